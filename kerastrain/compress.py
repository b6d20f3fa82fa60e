"""`python -m kerastrain.compress`: the same as `kerastrain compress` (see `kerastrain.export.compress`)."""

import sys

from kerastrain import cli
from kerastrain.export.compress import main

if __name__ == "__main__":
    cli.run_entry_point(main, sys.argv[1:])
