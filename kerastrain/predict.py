"""`python -m kerastrain.predict`: the same as `kerastrain predict` (see `kerastrain.export.predict`)."""

import sys

from kerastrain import cli
from kerastrain.export.predict import main

if __name__ == "__main__":
    cli.run_entry_point(main, sys.argv[1:])
