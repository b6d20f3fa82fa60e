"""Flags for the recipes, built from their config dataclasses, and error handling.

Every field of a recipe's config becomes a flag (`batch_size` -> `--batch-size`),
so a flag, a preset key and a config attribute always share one name. Only the
flags given on the command line override the preset.
"""

import argparse
import dataclasses
import sys

from kerastrain import config as config_lib
from kerastrain.errors import UsageError


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with status 2."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def parse_comma_integers(text):
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, like 3,4,5; received {text!r}"
        ) from None


def build_parser(config_class, prog, description):
    """An argument parser with one flag per field of `config_class`."""
    parser = OneLineErrorParser(
        prog=prog,
        description=description,
        argument_default=argparse.SUPPRESS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", metavar="PRESET.toml", help="A preset file from recipes/; flags override it."
    )
    parser.add_argument(
        "--debug", action="store_true", help="Show the full traceback of an error."
    )
    defaults = config_class()
    for item in dataclasses.fields(config_class):
        flag = "--" + item.name.replace("_", "-")
        kind = config_lib.field_type(item)
        default = getattr(defaults, item.name)
        help_text = f"{item.metadata['help']} (default: {format_default(default)})"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        elif kind is tuple:
            parser.add_argument(flag, type=parse_comma_integers, metavar="N,N", help=help_text)
        else:
            parser.add_argument(
                flag, type=kind, choices=item.metadata.get("choices"), help=help_text
            )
    return parser


def format_default(value):
    if isinstance(value, tuple):
        return ",".join(str(part) for part in value)
    return value


def parse_config(config_class, argv, prog, description):
    """Parses flags into a resolved config.

    Returns:
        A tuple `(config, debug)`.
    """
    parser = build_parser(config_class, prog, description)
    arguments = vars(parser.parse_args(argv))
    preset_path = arguments.pop("config", None)
    debug = arguments.pop("debug", False)
    return config_lib.resolve(config_class, preset_path, arguments), debug


def run_entry_point(main, argv=None):
    """Runs `main(argv)` and turns a `UsageError` into one line and exit status 2.

    With `--debug` among the arguments the traceback is shown instead.
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        main(argv)
    except UsageError as error:
        if "--debug" in argv:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume from the last epoch", file=sys.stderr)
        sys.exit(130)
