"""Flags of `kerastrain train RECIPE`, built from the recipe's config dataclass, and error handling.

Every field of a recipe's config becomes a flag (`batch_size` -> `--batch-size`),
so a flag, a preset key and a config attribute always share one name. Only the
flags given on the command line override the preset. `--help` groups the flags
by concern (the fields' `group`: data, model, training, precision and speed,
distribution, output) and answers without importing TensorFlow.
"""

import argparse
import dataclasses
import importlib.util
import sys

from kerastrain import config as config_lib
from kerastrain.errors import ClusterUnavailableError, UsageError


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with status 2."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def parse_comma_integers(text):
    parts = text.split(",")
    if parts and not parts[-1].strip():
        parts = parts[:-1]  # a trailing comma, as a loop that joins values leaves
    if not all(part.strip() for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, like 3,4,5; received {text!r}, which has an empty part"
        )
    try:
        return tuple(int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, like 3,4,5; received {text!r}"
        ) from None


def build_parser(config_class, prog, description):
    """An argument parser with one flag per field of `config_class`, in groups by concern."""
    parser = OneLineErrorParser(
        prog=prog,
        description=description,
        argument_default=argparse.SUPPRESS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = parser.add_argument_group("presets and search")
    run.add_argument(
        "--config",
        metavar="PRESET",
        help="A bundled preset's name (see kerastrain presets) or a .toml file; flags override it.",
    )
    run.add_argument(
        "--tune",
        action="store_true",
        help="Search the hyperparameters in the preset's [tune] table, then train the best.",
    )
    run.add_argument(
        "--max-trials",
        type=int,
        metavar="N",
        help="With --tune: the trial budget, overriding max_trials in the [tune] table.",
    )
    run.add_argument("--debug", action="store_true", help="Show the full traceback of an error.")
    groups = {name: parser.add_argument_group(name) for name in config_lib.GROUPS}
    defaults = config_class()
    for item in dataclasses.fields(config_class):
        flag = "--" + item.name.replace("_", "-")
        kind = config_lib.field_type(item)
        default = getattr(defaults, item.name)
        shown = format_default(default) if default != "" else "none"
        help_text = f"{item.metadata['help']} (default: {shown})"
        group = groups[item.metadata.get("group", "training")]
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        elif kind is tuple:
            group.add_argument(flag, type=parse_comma_integers, metavar="N,N", help=help_text)
        else:
            group.add_argument(flag, type=kind, choices=item.metadata.get("choices"), help=help_text)
    return parser


def format_default(value):
    if isinstance(value, tuple):
        return ",".join(str(part) for part in value)
    return value


@dataclasses.dataclass
class Command:
    """What a recipe's command line asks for.

    Attributes:
        config: the resolved, validated config.
        debug: whether to show tracebacks.
        search_space: with `--tune`, the checked `search_space.SearchSpace` of
            the preset's `[tune]` table; otherwise `None`.
    """

    config: object
    debug: bool = False
    search_space: object = None


def parse_command(config_class, argv, prog, description):
    """Parses flags into a resolved config and, with `--tune`, a search space.

    A preset's `[tune]` table is read only with `--tune`; a plain run trains the
    preset's base values.

    Returns:
        A `Command`.

    Raises:
        UsageError: for a bad flag, preset or search space, an empty
            `--output-dir`, `--tune` without a `[tune]` table, or `--tune`
            under a strategy other than `default`.
    """
    from kerastrain.search import search_space as search_space_lib

    parser = build_parser(config_class, prog, description)
    arguments = vars(parser.parse_args(argv))
    preset = arguments.pop("config", None)
    debug = arguments.pop("debug", False)
    tune = arguments.pop("tune", False)
    max_trials = arguments.pop("max_trials", None)
    if "output_dir" in arguments and not arguments["output_dir"].strip():
        raise UsageError(
            "--output-dir is empty (an unset shell variable?). Pass a folder, or leave the flag out to let "
            "kerastrain name the run folder."
        )
    values, space = (
        config_lib.read_checked_preset(preset, config_class, overridden=arguments) if preset is not None else ({}, None)
    )
    values.update(arguments)
    config = config_class(**values)
    config.validate()
    if max_trials is not None and not tune:
        raise UsageError("--max-trials only applies to --tune. Add --tune, or drop --max-trials.")
    if not tune:
        # Under --tune a trial may change what a setting needs (another --optimizer, say).
        config.check_given_settings_apply(values)
        return Command(config, debug)
    if importlib.util.find_spec("keras_tuner") is None:
        raise UsageError('--tune needs KerasTuner. Run: pip install "kerastrain[tune]" (or pip install keras-tuner).')
    example = search_space_lib.example_preset(config_class)
    if space is None:
        raise UsageError(
            f"--tune needs a preset with a [tune] table of the search space. Pass --config {example}, "
            "or add such a table to your preset."
        )
    if max_trials is not None:
        if max_trials < 1:
            raise UsageError(f"Expected --max-trials >= 1. Received: max_trials={max_trials}")
        space.max_trials = max_trials
    if config.strategy != "default":
        raise UsageError(
            f"--tune runs its trials in one process under --strategy default. "
            f"Received: strategy={config.strategy}; drop --strategy, then train the best config under it."
        )
    return Command(config, debug, space)


def train_command(recipe, argv, prog=None):
    """`kerastrain train RECIPE ...`: parses the flags, then searches (`--tune`) and trains.

    Args:
        recipe: the `Recipe` to train.
        argv: the flags.
        prog: the command's name in messages. Defaults to
            `kerastrain train RECIPE`.

    Returns:
        The finished `Run`, or `None` (a job's non-chief task, or a resumed
        search whose folder holds an earlier best model).
    """
    command = parse_command(recipe.config_class, argv, prog or f"kerastrain train {recipe.name}", recipe.summary)
    from kerastrain import pipeline  # after the flags: --help and bad flags answer without pandas

    config = pipeline.with_output_dir(recipe, command.config)
    if command.search_space:
        # Search the [tune] table's values, then train the best config in the same folder.
        from kerastrain.search import tuning

        config = tuning.search(recipe, config, command.search_space)
        if config is None:  # the folder holds the model of an earlier best config
            return None
    return pipeline.train(recipe, config)


def run_entry_point(main, argv=None):
    """Runs `main(argv)` and turns a `UsageError` into one line and exit status 2.

    A `ClusterUnavailableError` is one line and exit status 138, which an
    engine such as the Kubeflow training operator retries.

    Output into a pipe that its reader closed (`kerastrain presets | head`)
    ends the command quietly with status 141, as a program killed by SIGPIPE.

    With `--debug` among the arguments the traceback is shown instead.
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        main(argv)
        sys.stdout.flush()  # inside the try: a closed pipe shows here, not at exit
    except UsageError as error:
        if "--debug" in argv:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except ClusterUnavailableError as error:
        if "--debug" in argv:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(ClusterUnavailableError.EXIT_STATUS)  # retryable: see kerastrain.errors
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume from the last finished epoch", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        end_with_closed_stdout()


def end_with_closed_stdout():
    """Exits with 128 + SIGPIPE, pointing stdout at the null device so that Python's last flush stays silent."""
    import os

    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    sys.exit(141)
