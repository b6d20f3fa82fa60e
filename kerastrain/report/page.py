"""The run report: one self-contained HTML page about a finished run.

`report.html` holds the run's summary, training curves, test-set results, the
linear baseline, the learning-rate schedule, throughput (per epoch, and per
worker when the folder has `workers.csv`), hyperparameter trials (when it has
`tuning/trials.csv`), the config and the environment. Its images are embedded
as base64 PNG data, and it needs no CSS, script or font from elsewhere, so it
can be mailed or archived as one file. Parts a run does not have (no baseline,
no trials) are left out.

Rewrite the report of a run with `python -m kerastrain report RUN_DIR`.
"""

import base64
import html
import io
import json
import os

import pandas as pd

from kerastrain import plots, run_folder
from kerastrain.distribute import cluster

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328;
       background: #f6f8fa; margin: 0; line-height: 1.45; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
.subtitle { color: #59636e; margin: 0 0 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }
.card { flex: 1 1 0; min-width: 96px; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; }
.card .value { font-size: 1.35em; font-weight: 600; }
.card .name { color: #59636e; font-size: 0.85em; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 3px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { font-weight: 600; background: #eef6ee; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px;
      overflow-x: auto; font-size: 0.88em; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.pair { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.pair > * { flex: 1 1 420px; min-width: 0; }
.note { color: #59636e; font-size: 0.9em; }
.wide { overflow-x: auto; }
"""


def write_report(run_path):
    """Writes `report.html` into a finished run's folder.

    Args:
        run_path: the run folder (a recipe's `--output-dir`).

    Returns:
        The path of the report.

    Raises:
        UsageError: if `run_path` does not hold a finished run.

    Example:

    ```python
    write_report("runs/textcnn")  # runs/textcnn/report.html
    ```
    """
    run = run_folder.open_finished_run(run_path)
    run.write_text(run_folder.REPORT, build_report(run))
    return run.file(run_folder.REPORT)


def build_report(run):
    """The report page of a finished run, as HTML text.

    Args:
        run: a `RunFolder` that holds a finished run.

    Returns:
        A string.
    """
    stored = run.read_json(run_folder.CONFIG) if run.exists(run_folder.CONFIG) else {}
    config = stored.get("config", {})
    environment = stored.get("environment", {})
    metrics = run.read_json(run_folder.METRICS)
    history = run.read_history()
    workers = run.read_workers()
    name = os.path.basename(os.path.abspath(run.path))
    sections = [
        summary_section(name, stored, metrics),
        curves_section(run, history),
        evaluation_section(run),
        baseline_section(metrics),
        learning_rate_section(config, metrics, len(history)),
        throughput_section(history, environment, workers, config, metrics),
        trials_section(run),
        side_by_side(
            key_value_section("config", "Config", config),
            "<div>\n"
            + key_value_section("data", "Data", describe_data(stored))
            + "\n"
            + key_value_section("environment", "Environment", describe_environment(environment))
            + "\n</div>",
        ),
    ]
    body = "\n".join(section for section in sections if section)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>kerastrain run {escape(name)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def summary_section(name, stored, metrics):
    config = stored.get("config", {})
    environment = stored.get("environment", {})
    test = metrics.get("test", {})
    validation = metrics.get("validation", {})
    cards = [
        ("test accuracy", format_number(test.get("accuracy"), 4)),
        ("test macro F1", format_number(test.get("macro_f1"), 4)),
        ("test loss", format_number(test.get("loss"), 4)),
        ("best validation loss", format_number(validation.get("best_loss"), 4)),
        ("epochs", metrics.get("epochs", "")),
        ("train seconds", format_number(metrics.get("train_seconds"), 1)),
        ("examples / s", format_number(metrics.get("examples_per_second"), 0)),
    ]
    card_html = "".join(
        f'<div class="card"><div class="value">{escape(value)}</div><div class="name">{escape(label)}</div></div>'
        for label, value in cards
    )
    where = ", ".join(
        part
        for part in (
            stored.get("recipe", ""),
            f"data: {config['data']}" if "data" in config else "",
            stored.get("preprocessor", {}).get("description", ""),
            f"{environment.get('precision', '')} on {describe_cluster(environment)}" if environment else "",
            f"strategy {config['strategy']}" if "strategy" in config else "",
        )
        if part
    )
    return (
        f'<section id="summary">\n<h1>kerastrain run: {escape(name)}</h1>\n'
        f'<p class="subtitle">{escape(where)}</p>\n<div class="cards">{card_html}</div>\n{refit_note(metrics)}</section>'
    )


def refit_note(metrics):
    """A paragraph on the refitted model of `--refit`, or `""` for a run without one."""
    refit = metrics.get("refit")
    if not refit:
        return ""
    epochs = refit.get("epochs", 0)
    return (
        '<p id="refit">The test scores are those of a model trained anew on the training and validation '
        f"splits together ({refit.get('examples', 0):,} examples) for {epochs} epoch{'' if epochs == 1 else 's'}, "
        "the epoch count after which the first model's validation loss was lowest "
        f"({format_number(refit.get('train_seconds'), 1)} s more). The curves below are the first model's.</p>\n"
    )


def curves_section(run, history):
    if run.exists("history.png"):
        image = read_png(run.file("history.png"))
    elif len(history):
        image = figure_png(plots.plot_history(history))
    else:
        return ""
    return (
        '<section id="curves">\n<h2>Training curves</h2>\n'
        f"{image_tag(image, 'loss and accuracy per epoch, train and validation')}\n</section>"
    )


def evaluation_section(run):
    parts = []
    if run.exists("classification_report.txt"):
        with open(run.file("classification_report.txt")) as file:
            parts.append(f"<div><h3>Classification report</h3>\n<pre>{escape(file.read())}</pre></div>")
    if run.exists("confusion_matrix.png"):
        image = image_tag(read_png(run.file("confusion_matrix.png")), "confusion matrix of the test split")
        parts.append(f"<div><h3>Confusion matrix</h3>\n{image}</div>")
    if not parts:
        return ""
    return '<section id="test">\n<h2>Test split</h2>\n<div class="pair">' + "\n".join(parts) + "</div>\n</section>"


def baseline_section(metrics):
    baseline = metrics.get("baseline")
    if not baseline:
        return ""
    test = metrics.get("test", {})
    refit = metrics.get("refit")
    seconds = metrics.get("train_seconds")
    if refit and seconds is not None:
        seconds += refit.get("train_seconds", 0.0)
    rows = [
        ["this run", format_number(test.get("accuracy"), 4), format_number(test.get("macro_f1"), 4),
         format_number(seconds, 1)],
        [baseline.get("model", "baseline"), format_number(baseline.get("accuracy"), 4),
         format_number(baseline.get("macro_f1"), 4), format_number(baseline.get("train_seconds"), 1)],
    ]  # fmt: skip
    learns_from = "the training and validation splits, as the refitted model does" if refit else "the same training split"
    note = (
        f"The baseline learns from {learns_from} and is scored on the same test split. "
        f"Accuracy difference, this run minus the baseline: {test.get('accuracy', 0) - baseline.get('accuracy', 0):+.4f}."
    )
    if baseline.get("converged") is False:
        note += " The baseline's solver stopped at its iteration limit before converging."
    return (
        '<section id="baseline">\n<h2>Against a linear baseline</h2>\n'
        + html_table(["model", "test accuracy", "test macro F1", "train seconds"], rows, numeric_columns={1, 2, 3})
        + f'\n<p class="note">{escape(note)}</p>\n</section>'
    )


def learning_rates(config, total_steps):
    """The learning rate of each training step, from the optimizer's own schedule code.

    Args:
        config: the run's config dict (`learning_rate`, `schedule`,
            `decay_steps`, `decay_rate`); `decay_steps` 0 decays over
            `total_steps`.
        total_steps: number of training steps.

    Returns:
        A NumPy array of `total_steps` learning rates.
    """
    import numpy as np

    if config["schedule"] == "constant":
        # What `build_schedule` returns for it, without the seconds of importing TensorFlow.
        return np.full(total_steps, float(config["learning_rate"]))
    from kerastrain import optimizers
    from kerastrain.backend import tf

    schedule = optimizers.build_schedule(
        config["schedule"], config["learning_rate"], config["decay_steps"] or total_steps, config["decay_rate"]
    )
    # The optimizer calls the schedule with its step count before each update: 0, 1, ...
    return schedule(tf.range(total_steps, dtype=tf.float32)).numpy()


def learning_rate_section(config, metrics, epochs):
    steps_per_epoch = metrics.get("steps_per_epoch")
    needed = ("schedule", "learning_rate", "decay_steps", "decay_rate")
    if not steps_per_epoch or not epochs or any(name not in config for name in needed):
        return ""
    total_steps = steps_per_epoch * epochs
    # --decay-steps 0 decays over the planned epochs, which early stopping may cut short.
    planned = {**config, "decay_steps": config["decay_steps"] or steps_per_epoch * config.get("epochs", epochs)}
    rates = learning_rates(planned, total_steps)
    image = image_tag(figure_png(plots.plot_learning_rate(rates, steps_per_epoch)), "learning rate per training step")
    note = (
        f"Schedule {config['schedule']} from {config['learning_rate']:g} over the run's {total_steps} training "
        f"steps ({epochs} epochs of {steps_per_epoch}), computed with the optimizer's schedule code; "
        f"the last step's rate is {rates[-1]:.3g}."
    )
    return f'<section id="learning-rate">\n<h2>Learning rate</h2>\n{image}\n<p class="note">{escape(note)}</p>\n</section>'


def throughput_section(history, environment, workers, config, metrics):
    if "examples_per_second" not in history or not len(history):
        return ""
    rows = [
        [int(row.epoch), format_number(getattr(row, "epoch_seconds", None), 2), format_number(row.examples_per_second, 0)]
        for row in history.itertuples()
    ]
    table = html_table(["epoch", "seconds", "examples / s"], rows, numeric_columns={0, 1, 2})
    image = image_tag(figure_png(plots.plot_throughput(history, workers)), "training examples per second of each epoch")
    note = (
        "Each epoch is timed from its start to its end, validation included, so the first epoch "
        "also holds the graph's tracing and compilation."
    )
    if environment.get("cluster"):
        note += (
            f" This run used a cluster ({describe_cluster(environment)}). The chief times whole epochs "
            "of the job, so these are the whole job's figures"
        )
        if len(workers):
            note += "; each worker's share is below."
        else:
            note += (
                f"; the run folder has no {run_folder.WORKERS}, so there are no per-worker figures "
                "(the run was trained before kerastrain wrote them)."
            )
    per_worker = ""
    if len(workers):
        per_worker = (
            f'\n<h3>Per worker</h3>\n<div class="wide">{worker_table(workers, history)}</div>\n'
            f'<p class="note">{escape(worker_note(workers, config, metrics))}</p>'
        )
    return (
        f'<section id="throughput">\n<h2>Throughput</h2>\n<div class="pair"><div>{image}</div>'
        f'<div>{table}</div></div>\n<p class="note">{escape(note)}</p>{per_worker}'
        f"{precision_part(environment)}\n</section>"
    )


def precision_part(environment):
    """How the run's float policy was chosen, and the preflight's timings when there was one."""
    choice = environment.get("precision_choice")
    if not choice:
        return ""
    speeds = choice.get("examples_per_second") or {}
    table = ""
    if speeds:
        reference = speeds.get("float32")
        rows = [
            [policy, format_number(speed, 0), f"{speed / reference:.2f}x" if reference else ""]
            for policy, speed in speeds.items()
        ]
        table = "\n" + html_table(["policy", "preflight examples / s", "vs float32"], rows, numeric_columns={1, 2})
    note = ""
    if choice.get("preflight_seconds") is not None:
        note = (
            f"The preflight trained a few batches of the model in each policy, alternating, and took "
            f"{choice['preflight_seconds']:.1f} s, compilation included; a reduced precision is kept only "
            f"at {choice.get('threshold', '')}x float32's examples per second or more."
        )
    return (
        f'\n<h3 id="precision">Precision</h3>\n<p>{escape(choice.get("reason", ""))}</p>{table}'
        + (f'\n<p class="note">{escape(note)}</p>' if note else "")
    )


def worker_table(workers, history):
    """Each worker's steps and examples per second: one row per epoch, and one for the whole run."""
    steps = workers.pivot(index="epoch", columns="worker", values="steps")
    rates = workers.pivot(index="epoch", columns="worker", values="examples_per_second")
    columns = ["epoch"]
    for worker in steps.columns:
        columns += [f"worker {worker} steps", f"worker {worker} examples / s"]
    rows = []
    for epoch in steps.index:
        cells = [int(epoch)]
        for worker in steps.columns:
            cells += [format_number(steps.at[epoch, worker], 0), format_number(rates.at[epoch, worker], 0)]
        rows.append(cells)
    seconds = history.set_index("epoch")["epoch_seconds"] if "epoch_seconds" in history else None
    if seconds is not None and len(steps) > 1:
        examples = workers.pivot(index="epoch", columns="worker", values="examples")
        run_seconds = seconds.reindex(steps.index).sum()
        cells = ["all"]
        for worker in steps.columns:
            # A blank (a count that could not be read) leaves the total unknown rather than smaller.
            total_steps = steps[worker].sum(skipna=False)
            cells += [format_number(total_steps, 0), format_number(examples[worker].sum(skipna=False) / run_seconds, 0)]
        rows.append(cells)
    return html_table(columns, rows, numeric_columns=set(range(len(columns))))


def worker_note(workers, config, metrics):
    """What the per-worker figures are, counted or derived, and the epochs whose counts fall short."""
    count = workers["worker"].nunique()
    if (workers["source"] == "derived").all():
        return (
            f"Under multi-worker mirrored training every worker runs every training step in lockstep, on "
            f"1/{count} of the step's batch, so each worker's figures are the job's divided by {count}: "
            "derived from the chief's timing, not measured on each worker."
        )
    steps_per_epoch = metrics.get("steps_per_epoch")
    execution = f" ({config['steps_per_execution']} steps)" if config.get("steps_per_execution") else ""
    step_size = (
        f"{metrics['train_examples'] // steps_per_epoch} " if steps_per_epoch and "train_examples" in metrics else ""
    )
    note = (
        f"Under parameter servers the coordinator hands each call of the training function{execution} to "
        "whichever worker is free, so the workers' shares differ. Each worker counted the training steps it ran; "
        f"its examples are its steps times the {step_size}examples of one step, and its examples per second "
        "divide them by the epoch's seconds, so the workers' figures add up to the job's."
    )
    if steps_per_epoch:
        totals = workers.groupby("epoch")["steps"].sum(min_count=count)
        short = [int(epoch) for epoch, total in totals.items() if not total == steps_per_epoch]
        if short:
            note += (
                f" In epoch(s) {', '.join(map(str, short))} the counts do not add up to the epoch's "
                f"{steps_per_epoch} steps: a worker was down or restarted (a blank cell: its count could not be read)."
            )
    return note


def trials_section(run):
    if not run.exists(run_folder.TRIALS):
        return ""
    try:
        trials = pd.read_csv(run.file(run_folder.TRIALS))
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        # Written by a search that may still be running: a report must not fail on it.
        message = f"{run_folder.TRIALS} could not be read ({error})."
        return f'<section id="trials">\n<h2>Hyperparameter trials</h2>\n<p class="note">{escape(message)}</p>\n</section>'
    if "val_loss" in trials:
        trials = trials.sort_values("val_loss", na_position="last", kind="stable")
    columns = [str(column) for column in trials.columns]
    rows = [[format_cell(value) for value in row] for row in trials.itertuples(index=False)]
    numeric = {index for index, column in enumerate(trials.columns) if pd.api.types.is_numeric_dtype(trials[column])}
    table = html_table(columns, rows, numeric_columns=numeric, best_row=0 if "val_loss" in trials else None)
    return (
        '<section id="trials">\n<h2>Hyperparameter trials</h2>\n'
        f'<p class="note">{len(trials)} trial(s) from {escape(run_folder.TRIALS)}, lowest validation loss first.</p>\n'
        f"{table}\n</section>"
    )


def key_value_section(section_id, title, values):
    if not values:
        return ""
    rows = [[key, format_cell(value)] for key, value in values.items()]
    return f'<section id="{section_id}">\n<h2>{escape(title)}</h2>\n{html_table(["name", "value"], rows)}\n</section>'


def side_by_side(*parts):
    parts = [part for part in parts if part]
    return '<div class="pair">\n' + "\n".join(parts) + "\n</div>" if parts else ""


def describe_data(stored):
    """What the run was trained on: the data's source, size and fingerprint, and the model's inputs."""
    data = stored.get("data", {})
    described = {
        "source": data.get("source"),
        "examples": data.get("examples"),
        "fingerprint (SHA-256)": data.get("fingerprint", "")[:16] + "..." if data.get("fingerprint") else None,
        "model inputs": stored.get("preprocessor", {}).get("description"),
    }
    return {label: value for label, value in described.items() if value is not None}


def describe_environment(environment):
    if not environment:
        return {}
    names = {
        "tensorflow": "TensorFlow", "keras": "Keras", "python": "Python", "devices": "devices",
        "precision": "precision", "strategy": "strategy", "replicas": "replicas", "jit_compile": "XLA (jit_compile)",
    }  # fmt: skip
    described = {label: environment[key] for key, label in names.items() if key in environment}
    described["cluster"] = describe_cluster(environment)
    return described


def describe_cluster(environment):
    cluster_shape = environment.get("cluster") or {}
    if not cluster_shape:
        replicas = environment.get("replicas", 1)
        return f"one process, {replicas} replica" if replicas == 1 else f"one process, {replicas} replicas"
    return cluster.describe_tasks(cluster_shape)


def html_table(columns, rows, numeric_columns=(), best_row=None):
    """An HTML table of escaped cells; `numeric_columns` are right-aligned."""
    head = "".join(f"<th>{escape(column)}</th>" for column in columns)
    body = []
    for row_index, row in enumerate(rows):
        cells = "".join(
            f'<td class="number">{escape(cell)}</td>' if index in numeric_columns else f"<td>{escape(cell)}</td>"
            for index, cell in enumerate(row)
        )
        body.append(f'<tr class="best">{cells}</tr>' if row_index == best_row else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def format_number(value, decimals):
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return f"{value:,.{decimals}f}" if decimals == 0 else f"{value:.{decimals}f}"


def format_cell(value):
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, float):
        return "" if value != value else f"{value:.6g}"
    return str(value)


def escape(value):
    return html.escape(str(value))


def read_png(path):
    with open(path, "rb") as file:
        return file.read()


def figure_png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def image_tag(png, description):
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(description)}">'
