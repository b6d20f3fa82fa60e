"""The `kerastrain` command: the report of a run, and runs compared.

Usage:

    python -m kerastrain report runs/textcnn        # rewrites runs/textcnn/report.html
    python -m kerastrain compare runs/adam runs/sgd --output adam_vs_sgd.png

Installed, the same command is `kerastrain report ...` and `kerastrain compare ...`.
"""

import sys

from kerastrain import cli


def build_parser():
    """The parser of `kerastrain report` and `kerastrain compare`."""
    parser = cli.OneLineErrorParser(
        prog="kerastrain",
        description=__doc__.split("\n")[0],
        epilog="Run kerastrain COMMAND --help for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    report = commands.add_parser(
        "report", help="Write RUN_DIR/report.html, one self-contained page about a finished run."
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="A finished run's folder (a recipe's --output-dir).")
    compare = commands.add_parser(
        "compare",
        help="Draw the validation curves of finished runs into one PNG and print a table of their final metrics.",
    )
    compare.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="Finished runs' folders.")
    compare.add_argument(
        "--output", default="compare.png", metavar="FILE.png", help="The PNG of the curves (default: compare.png)."
    )
    for command in (report, compare):
        command.add_argument("--debug", action="store_true", help="Show the full traceback of an error.")
    return parser


def main(argv=None):
    """Runs one command.

    TensorFlow is imported only by `report`, and only to draw a decaying
    learning-rate schedule with the optimizer's own schedule code.
    """
    arguments = build_parser().parse_args(argv)
    from kerastrain import run_folder

    # Bad folders are refused before the plotting libraries take seconds to import.
    for path in [arguments.run_dir] if arguments.command == "report" else arguments.run_dirs:
        run_folder.open_finished_run(path)
    if arguments.command == "report":
        from kerastrain import report

        path = report.write_report(arguments.run_dir)
        print(f"kerastrain: wrote {path}")
    else:
        from kerastrain.report import compare

        print(compare.compare_runs(arguments.run_dirs, arguments.output))
        print(f"kerastrain: curves in {arguments.output}")


def run(argv=None):
    """The console script: `main` with one-line errors and exit status 2."""
    cli.run_entry_point(main, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    run()
