"""The `kerastrain` command.

Usage:

    kerastrain train textcnn [--config PRESET] [flags]    # train a recipe (see --help)
    kerastrain predict RUN_DIR --text "WINNER! Claim your prize"
    kerastrain compress RUN_DIR --method dynamic_int8
    kerastrain report RUN_DIR
    kerastrain compare RUN_DIR RUN_DIR --output compare.png
    kerastrain presets
    kerastrain cluster check --strategy parameter_server    # this task's TF_CONFIG

`python -m kerastrain ...` is the same command. Every subcommand answers
`--help` without importing TensorFlow.
"""

import sys

from kerastrain import cli
from kerastrain.errors import UsageError

SUBCOMMANDS = {
    "train": "Train a recipe: kerastrain train RECIPE [--config PRESET] [flags] (see kerastrain train RECIPE --help).",
    "predict": "Classify raw texts, or the rows of a CSV, with a finished run.",
    "compress": "Quantize a finished run's model and compare size and test accuracy.",
    "report": "Write RUN_DIR/report.html, one self-contained page about a finished run.",
    "compare": "Draw the validation curves of finished runs into one PNG and print their final metrics.",
    "presets": "List the bundled presets (for --config) and what each is for.",
    "cluster": "cluster check: check this task's TF_CONFIG and say what the task will do in the job.",
}


def build_parser():
    """The parser of `kerastrain`: the subcommands' names and summaries, and `report` and `compare`."""
    from kerastrain.recipes import recipe_names

    parser = cli.OneLineErrorParser(
        prog="kerastrain",
        description="TensorFlow/Keras training recipes: train, predict, compress and report.",
        epilog=f"Recipes: {', '.join(recipe_names())}. Run kerastrain COMMAND --help for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in SUBCOMMANDS.items():
        if name not in ("report", "compare", "presets", "cluster"):
            commands.add_parser(name, help=summary, add_help=False)
    cluster = commands.add_parser("cluster", help=SUBCOMMANDS["cluster"], description=SUBCOMMANDS["cluster"])
    cluster_commands = cluster.add_subparsers(dest="cluster_command", metavar="COMMAND", required=True)
    from kerastrain.distribute import check

    check.add_arguments(
        cluster_commands.add_parser(
            "check",
            help="Check this task's TF_CONFIG for a strategy: its role, the training cluster, what it will do.",
            description=check.__doc__.split("\n")[0],
        )
    )
    report = commands.add_parser("report", help=SUBCOMMANDS["report"], description=SUBCOMMANDS["report"])
    report.add_argument("run_dir", metavar="RUN_DIR", help="A finished run's folder.")
    compare = commands.add_parser("compare", help=SUBCOMMANDS["compare"], description=SUBCOMMANDS["compare"])
    compare.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="Finished runs' folders.")
    compare.add_argument(
        "--output", default="compare.png", metavar="FILE.png", help="The PNG of the curves (default: compare.png)."
    )
    presets = commands.add_parser("presets", help=SUBCOMMANDS["presets"], description=SUBCOMMANDS["presets"])
    for command in (report, compare, presets):
        command.add_argument("--debug", action="store_true", help="Show the full traceback of an error.")
    return parser


def train(argv):
    """`kerastrain train RECIPE [flags]`."""
    from kerastrain.recipes import find_recipe, recipe_names

    if not argv or argv[0] in ("-h", "--help"):
        lines = [
            "usage: kerastrain train RECIPE [--config PRESET] [flags]",
            "",
            "Trains a recipe; kerastrain train RECIPE --help lists its flags.",
            "",
            "recipes:",
        ]
        for name in recipe_names():
            lines.append(f"  {name:<10} {find_recipe(name).summary}")
        print("\n".join(lines))
        if not argv:
            raise UsageError("kerastrain train needs a recipe, like kerastrain train textcnn.")
        return
    cli.train_command(find_recipe(argv[0]), argv[1:])


def list_presets():
    from kerastrain import config

    rows = config.describe_presets()
    width = max(len(name) for name, _, _ in rows)
    print(f"{'preset':<{width}}  {'recipe':<8} what it is for")
    for name, recipe, summary in rows:
        print(f"{name:<{width}}  {recipe:<8} {summary}")
    print(f"\nUse one with: kerastrain train RECIPE --config PRESET. Files in {config.preset_folder()}")


def main(argv=None):
    """Runs one subcommand."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    if command == "train":
        return train(argv[1:])
    if command == "predict":
        from kerastrain.export import predict

        return predict.main(argv[1:], prog="kerastrain predict")
    if command == "compress":
        from kerastrain.export import compress

        return compress.main(argv[1:], prog="kerastrain compress")
    arguments = build_parser().parse_args(argv)
    if arguments.command == "presets":
        return list_presets()
    if arguments.command == "cluster":
        from kerastrain.distribute import check

        return check.main(arguments)
    from kerastrain import run_folder

    # Bad folders are refused before the plotting libraries take seconds to import.
    for path in [arguments.run_dir] if arguments.command == "report" else arguments.run_dirs:
        run_folder.open_finished_run(path)
    from kerastrain import files

    if arguments.command == "compare":
        files.check_writable_file(arguments.output, "--output", protected=arguments.run_dirs, example_name="curves.png")
    else:
        files.check_writable_folder(arguments.run_dir, "RUN_DIR")  # report.html goes into it
    if arguments.command == "report":
        from kerastrain import report

        print(f"kerastrain: wrote {report.write_report(arguments.run_dir)}")
    else:
        from kerastrain.report import compare

        print(compare.compare_runs(arguments.run_dirs, arguments.output))
        print(f"kerastrain: curves in {arguments.output}")


def run(argv=None):
    """The console script: `main` with one-line errors and exit status 2."""
    cli.run_entry_point(main, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    run()
