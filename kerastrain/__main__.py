"""`python -m kerastrain`: see `kerastrain.commands`."""

from kerastrain.commands import run

if __name__ == "__main__":
    run()
