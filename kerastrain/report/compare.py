"""Several finished runs side by side: their validation curves and final numbers.

Run it as `python -m kerastrain compare RUN_DIR RUN_DIR ... [--output compare.png]`.
"""

import os

from kerastrain import files, plots, run_folder
from kerastrain.errors import UsageError

COLUMNS = (
    "run", "test accuracy", "test loss", "macro F1", "epochs", "examples/s", "train s", "precision", "strategy",
)  # fmt: skip


def run_labels(paths):
    """A label per run: its folder name, or its path where two folder names are the same."""
    names = [os.path.basename(os.path.normpath(path)) for path in paths]
    return [name if names.count(name) == 1 else os.path.normpath(path) for name, path in zip(names, paths)]


def summary_row(label, run):
    """The final metrics and speed of a finished run, as the table's cells (strings)."""
    metrics = run.read_json(run_folder.METRICS)
    stored = run.read_json(run_folder.CONFIG) if run.exists(run_folder.CONFIG) else {}
    config = stored.get("config", {})
    environment = stored.get("environment", {})
    test = metrics.get("test", {})

    def number(value, decimals):
        return "-" if value is None else f"{value:.{decimals}f}"

    return [
        label,
        number(test.get("accuracy"), 4),
        number(test.get("loss"), 4),
        number(test.get("macro_f1"), 4),
        str(metrics.get("epochs", "-")),
        number(metrics.get("examples_per_second"), 0),
        number(metrics.get("train_seconds"), 1),
        str(environment.get("precision") or config.get("precision", "-")),
        str(config.get("strategy", "-")),
    ]


def format_table(columns, rows):
    """A plain text table: a header, a rule, and one line per row, columns aligned.

    Text columns are aligned left, numbers right.
    """
    widths = [max(len(str(cell)) for cell in column) for column in zip(columns, *rows)]

    def is_number(text):
        return text.replace(".", "", 1).replace("-", "", 1).isdigit()

    def line(cells):
        return "  ".join(
            cell.rjust(width) if is_number(cell) else cell.ljust(width) for cell, width in zip(cells, widths)
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(list(columns)), rule, *(line(row) for row in rows)])


def compare_runs(paths, output="compare.png"):
    """Draws the runs' validation curves into `output` and tabulates their final numbers.

    Args:
        paths: folders of finished runs.
        output: the PNG file of the curves. Defaults to `"compare.png"`.

    Returns:
        The table, as text.

    Raises:
        UsageError: if a folder holds no finished run, or `output` is not a PNG
            path that can be written, or is a file of one of the runs.

    Example:

    ```python
    print(compare_runs(["runs/adam", "runs/sgd"], "adam_vs_sgd.png"))
    ```
    """
    if not output.lower().endswith(".png"):
        raise UsageError(f"Expected --output to be a .png file. Received: output={output!r}")
    files.check_writable_file(output, "--output", protected=paths, example_name="curves.png")
    runs = [run_folder.open_finished_run(path) for path in paths]
    labels = run_labels(paths)
    rows = [summary_row(label, run) for label, run in zip(labels, runs)]
    figure = plots.plot_run_comparison({label: run.read_history() for label, run in zip(labels, runs)})
    figure.savefig(output, dpi=110)
    return format_table(COLUMNS, rows)
