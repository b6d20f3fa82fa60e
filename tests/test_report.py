"""The run report, the linear baseline and `kerastrain compare`, as users meet them."""

import base64
import configparser
import importlib
import json
import math
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as matplotlib_image

from conftest import REPO, error_lines, run_module
from kerastrain import baseline, plots, report, run_folder
from kerastrain.report import compare
from kerastrain.errors import UsageError

ALWAYS_THERE = ("summary", "curves", "test", "learning-rate", "throughput", "config", "data", "environment")
SECTION_TITLES = {
    "summary": "kerastrain run:",
    "curves": "Training curves",
    "test": "Test split",
    "baseline": "Against a linear baseline",
    "learning-rate": "Learning rate",
    "throughput": "Throughput",
    "trials": "Hyperparameter trials",
    "config": "Config",
    "environment": "Environment",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def section_ids(page):
    return re.findall(r'<section id="([^"]+)">', page)


def embedded_images(page):
    return re.findall(r"<img [^>]*src=\"([^\"]*)\"", page)


def copy_run(run_dir, destination):
    """A copy of a finished run that a test may change without touching the session's run."""
    shutil.copytree(run_dir, destination)
    return destination


def rewrite_json(path, change):
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


# The run a recipe writes.


@pytest.mark.slow
def test_recipe_writes_a_self_contained_report_with_a_baseline(finished_textcnn_run):
    run_dir, arguments = finished_textcnn_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())["config"]
    history = pd.read_csv(run_dir / "history.csv")
    # 800 examples, 10% validation and 20% test: 560 train; an epoch is
    # ceil(560 / 32) whole batches of 32, the data repeating.
    assert config["batch_size"] == 32
    assert metrics["steps_per_epoch"] == math.ceil(560 / 32)
    assert metrics["train_examples"] == math.ceil(560 / 32) * 32
    scores = metrics["baseline"]
    assert scores["model"].startswith("TF-IDF")
    assert 0.8 < scores["accuracy"] <= 1 and 0 < scores["macro_f1"] <= 1 and scores["train_seconds"] > 0

    page = (run_dir / "report.html").read_text()
    assert section_ids(page) == [*ALWAYS_THERE[:3], "baseline", *ALWAYS_THERE[3:]]
    for section, title in SECTION_TITLES.items():
        assert (title in page) == (section != "trials"), title
    assert f"{metrics['test']['accuracy']:.4f}" in page and f"{scores['accuracy']:.4f}" in page
    assert f"{config['learning_rate']:g}" in page and f"{len(history)} epochs of {metrics['steps_per_epoch']}" in page
    assert config["data"] in page
    assert "per-worker" not in page  # a single process: nothing to say about workers

    images = embedded_images(page)
    assert len(images) == 4  # curves, confusion matrix, learning rate, throughput
    for source in images:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    without_images = re.sub(r'src="data:[^"]*"', "", page)
    for outside in ("http://", "https://", "<link", "<script", "url(", "@import", "src="):
        assert outside not in without_images, outside


@pytest.mark.slow
def test_report_of_a_cluster_run_without_workers_csv_says_it_has_no_per_worker_figures(finished_textcnn_run, tmp_path):
    run_dir = copy_run(finished_textcnn_run[0], tmp_path / "older_cluster_run")
    rewrite_json(run_dir / "config.json", lambda stored: stored["environment"].update(cluster={"worker": 2, "ps": 1}))
    page = open(report.write_report(run_dir)).read()
    assert "2 workers, 1 ps" in page
    assert "has no workers.csv, so there are no per-worker figures" in page and "Per worker" not in page


def write_workers_csv(run_dir, steps, source, examples_per_step):
    """A `workers.csv` for a finished run's epochs: `steps[epoch][worker]`, `None` for a count not read."""
    seconds = pd.read_csv(run_dir / "history.csv")["epoch_seconds"]
    rows = []
    for epoch, epoch_steps in enumerate(steps):
        for worker, count in enumerate(epoch_steps):
            if count is None:
                rows.append([epoch, worker, None, None, None, source])
                continue
            share = examples_per_step / len(epoch_steps) if source == "derived" else examples_per_step
            rows.append([epoch, worker, count, count * share, count * share / seconds[epoch], source])
    columns = ["epoch", "worker", "steps", "examples", "examples_per_second", "source"]
    pd.DataFrame(rows, columns=columns).to_csv(run_dir / run_folder.WORKERS, index=False)


def throughput_html(page):
    section = page[page.index('<section id="throughput">') :]
    return section[: section.index("</section>")]


@pytest.mark.slow
def test_report_of_a_parameter_server_run_shows_each_workers_counted_steps(finished_textcnn_run, tmp_path):
    run_dir = copy_run(finished_textcnn_run[0], tmp_path / "parameter_server_run")
    rewrite_json(run_dir / "config.json", lambda stored: stored["environment"].update(cluster={"worker": 2, "ps": 1}))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    steps_per_epoch = metrics["steps_per_epoch"]  # 18 steps of 32 examples
    # Epoch 3: worker 1 could not be read, so its count is blank and the epoch's counts fall short.
    write_workers_csv(run_dir, [[10, 8], [11, 7], [12, None]], "counted", examples_per_step=32)
    page = open(report.write_report(run_dir)).read()
    section = throughput_html(page)
    headers = re.findall(r"<th>(.*?)</th>", section)
    assert headers[3:] == [
        "epoch", "worker 0 steps", "worker 0 examples / s", "worker 1 steps", "worker 1 examples / s"
    ]  # fmt: skip
    body = section.split("Per worker")[1]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(<td.*?)</tr>", body)]
    assert [row[0] for row in rows] == ["1", "2", "3", "all"]
    assert [row[1] for row in rows] == ["10", "11", "12", "33"] and [row[3] for row in rows] == ["8", "7", "", ""]
    history = pd.read_csv(run_dir / "history.csv")
    assert rows[0][2] == f"{10 * 32 / history['epoch_seconds'][0]:,.0f}"
    steps_per_execution = json.loads((run_dir / "config.json").read_text())["config"]["steps_per_execution"]
    assert f"training function ({steps_per_execution} steps)" in section
    assert "Each worker counted the training steps it ran" in section and "the 32 examples of one step" in section
    assert f"In epoch(s) 3 the counts do not add up to the epoch&#x27;s {steps_per_epoch} steps" in section
    assert len(embedded_images(page)) == 4

    figure = plots.plot_throughput(history, run_folder.RunFolder(run_dir).read_workers())
    (axis,) = figure.axes
    assert [line.get_label() for line in axis.lines] == ["worker 0", "worker 1"]
    expected_rates = np.array([10, 11, 12]) * 32 / history["epoch_seconds"]
    np.testing.assert_allclose(axis.lines[0].get_ydata(), expected_rates)


@pytest.mark.slow
def test_report_of_a_multi_worker_mirrored_run_says_its_worker_figures_are_derived(finished_textcnn_run, tmp_path):
    run_dir = copy_run(finished_textcnn_run[0], tmp_path / "mirrored_run")
    rewrite_json(run_dir / "config.json", lambda stored: stored["environment"].update(cluster={"worker": 2}))
    steps_per_epoch = json.loads((run_dir / "metrics.json").read_text())["steps_per_epoch"]
    write_workers_csv(run_dir, [[steps_per_epoch] * 2] * 3, "derived", examples_per_step=32)
    section = throughput_html(open(report.write_report(run_dir)).read())
    assert "every worker runs every training step in lockstep, on 1/2 of the step&#x27;s batch" in section
    assert "derived from the chief&#x27;s timing, not measured on each worker" in section
    assert "do not add up" not in section


@pytest.mark.slow
def test_report_leaves_out_what_a_run_does_not_have(finished_textcnn_run, tmp_path):
    run_dir = copy_run(finished_textcnn_run[0], tmp_path / "older_run")
    # A run from before baselines and steps_per_epoch, whose history.png was lost.
    rewrite_json(run_dir / "metrics.json", lambda metrics: [metrics.pop(key) for key in ("baseline", "steps_per_epoch")])
    (run_dir / "history.png").unlink()
    (run_dir / "report.html").unlink()
    path = report.write_report(run_dir)
    page = open(path).read()
    assert section_ids(page) == ["summary", "curves", "test", "throughput", "config", "data", "environment"]
    assert "Against a linear baseline" not in page and "Hyperparameter trials" not in page
    assert len(embedded_images(page)) == 3  # the curves, drawn again from history.csv


@pytest.mark.slow
def test_trials_table_lists_the_best_trial_first(finished_textcnn_run, tmp_path):
    run_dir = copy_run(finished_textcnn_run[0], tmp_path / "tuned_run")
    (run_dir / "tuning").mkdir()
    pd.DataFrame(
        {
            "trial": [0, 1, 2, 3],
            "status": ["completed", "completed", "failed", "completed"],
            "learning_rate": [0.01, 0.001, 0.1, 0.003],
            "filters": [8, 16, 32, 16],
            "val_loss": [0.31, 0.22, float("nan"), 0.27],
            "val_accuracy": [0.90, 0.95, float("nan"), 0.93],
        }
    ).to_csv(run_dir / run_folder.TRIALS, index=False)
    page = open(report.write_report(run_dir)).read()
    assert "trials" in section_ids(page)
    trials = page[page.index('<section id="trials">') :]
    trials = trials[: trials.index("</section>")]
    rows = re.findall(r"<tr( class=\"best\")?>(.*?)</tr>", trials)
    header, *body = rows
    assert re.findall(r"<th>(.*?)</th>", header[1]) == [
        "trial", "status", "learning_rate", "filters", "val_loss", "val_accuracy"
    ]  # fmt: skip
    first_cells = [re.findall(r"<td[^>]*>(.*?)</td>", row[1])[0] for row in body]
    assert first_cells == ["1", "3", "0", "2"]  # by val_loss; the failed trial last
    assert body[0][0] and not any(row[0] for row in body[1:])  # only the best row is marked


@pytest.mark.slow
def test_an_empty_trials_file_is_named_in_the_page_not_raised(finished_textcnn_run, tmp_path):
    run_dir = copy_run(finished_textcnn_run[0], tmp_path / "tuning_started")
    (run_dir / "tuning").mkdir()
    (run_dir / run_folder.TRIALS).write_text("")
    page = open(report.write_report(run_dir)).read()
    assert "tuning/trials.csv could not be read" in page


def test_learning_rates_are_those_the_optimizer_used(tmp_path):
    from kerastrain import optimizers, tf_data, training
    from kerastrain.distribute.inputs import make_training_inputs
    from kerastrain.backend import keras, tf
    from kerastrain.models import build_mlp

    config = {"schedule": "cosine", "learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5}
    model = build_mlp(3, 2, hidden_units=(4,))
    training.compile_classifier(model, optimizers.build_optimizer("sgd", 0.1, schedule="cosine", decay_steps=5))
    used = []

    class RecordLearningRate(keras.callbacks.Callback):
        # After each update the optimizer shows the rate that update used.
        def on_train_batch_end(self, batch, logs=None):
            used.append(float(self.model.optimizer.learning_rate))

    features = np.random.default_rng(0).random((10, 3), dtype=np.float32)
    labels = np.array([0, 1] * 5, dtype=np.int32)
    strategy = tf.distribute.get_strategy()
    inputs = make_training_inputs(strategy, (features, labels), (features, labels), batch_size=4)
    model.fit(inputs.train, epochs=3, verbose=0, callbacks=[RecordLearningRate()], **inputs.fit_arguments)
    steps_per_epoch = inputs.steps_per_epoch
    assert steps_per_epoch == 3 and int(model.optimizer.iterations) == 3 * steps_per_epoch
    np.testing.assert_allclose(report.learning_rates(config, 3 * steps_per_epoch), used, rtol=1e-5, atol=1e-7)
    assert used[-1] == 0.0  # cosine reaches 0 after decay_steps


def test_constant_learning_rate_is_what_the_optimizer_gets():
    from kerastrain import optimizers

    config = {"schedule": "constant", "learning_rate": 0.003, "decay_steps": 5, "decay_rate": 0.5}
    expected = optimizers.build_schedule("constant", 0.003, decay_steps=5, decay_rate=0.5)
    np.testing.assert_array_equal(report.learning_rates(config, 4), [expected] * 4)


# The baseline on its own.


def test_baseline_on_numeric_features_scales_them(digits_csv):
    from kerastrain import data
    from kerastrain.data import splits

    examples = data.load_examples(str(digits_csv), "text", "label", allow_numeric=True)
    split = splits.stratified_split(examples, 0.1, 0.2, seed=0)
    class_names, train_labels, _, test_labels = splits.encode_labels(split)
    scores = baseline.fit_and_score(split, train_labels, test_labels, len(class_names))
    assert scores["model"] == "standardized features + logistic regression"
    assert scores["accuracy"] > 0.9 and scores["macro_f1"] > 0.9  # ten classes: chance is 0.1
    assert scores["converged"] and scores["train_seconds"] > 0
    name, pipeline = baseline.build_baseline(is_text=False)
    assert type(pipeline[0]).__name__ == "StandardScaler"


def test_baseline_on_features_near_float32s_largest_fits_without_overflow():
    from kerastrain.data.examples import Examples
    from kerastrain.data.splits import Split

    random = np.random.default_rng(0)
    labels = np.arange(200) % 2
    # One column near 1e38: its squares overflow float32, in which the features arrive.
    features = np.stack([random.normal(size=200) * 1e38, labels + random.normal(scale=0.1, size=200)], axis=1)
    examples = Examples(features.astype(np.float32), labels.astype(str), "test", ["huge", "signal"])
    split = Split(examples.subset(np.arange(150)), None, examples.subset(np.arange(150, 200)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        scores = baseline.fit_and_score(split, labels[:150], labels[150:], 2)
    assert scores["accuracy"] > 0.9  # the second column separates the classes


def test_baseline_on_text_uses_tfidf():
    name, pipeline = baseline.build_baseline(is_text=True)
    assert "TF-IDF" in name and type(pipeline[0]).__name__ == "TfidfVectorizer"
    assert pipeline[0].ngram_range == (1, 2)


# In a browser, as a person sees it.


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


PROBE = """<script>
window.addEventListener("load", () => {
  const result = {
    images: Array.from(document.images).map(image => ({
      complete: image.complete, naturalWidth: image.naturalWidth, shownWidth: image.getBoundingClientRect().width,
    })),
    sections: Array.from(document.querySelectorAll("section")).map(section => section.id),
    headings: Array.from(document.querySelectorAll("h1, h2")).map(heading => heading.textContent),
    overflow: document.documentElement.scrollWidth - window.innerWidth,
  };
  const output = document.createElement("pre");
  output.id = "probe";
  output.textContent = JSON.stringify(result);
  document.body.appendChild(output);
});
</script>"""


def render_in_chromium(page_path, tmp_path, width=1200):
    """What headless Chromium shows of a page: its images, sections and headings once loaded.

    The page is copied with a small script added that records them when the page
    has loaded, and Chromium prints the resulting document.
    """
    probed = tmp_path / "probed.html"
    probed.write_text(page_path.read_text().replace("</body>", PROBE + "</body>"))
    result = subprocess.run(
        [
            chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--window-size={width},900", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, result.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


needs_chromium = pytest.mark.skipif(chromium_path() is None, reason="Chromium not installed (apt-get install chromium)")


@pytest.mark.slow
@needs_chromium
def test_report_shows_every_image_and_section_in_chromium(finished_textcnn_run, tmp_path):
    run_dir = copy_run(finished_textcnn_run[0], tmp_path / "shown_run")
    (run_dir / "tuning").mkdir()
    (run_dir / run_folder.TRIALS).write_text(
        "trial,status,learning_rate,val_loss,val_accuracy\n0,completed,0.01,0.3,0.9\n1,completed,0.001,0.2,0.95\n"
    )
    report.write_report(run_dir)
    shown = render_in_chromium(run_dir / "report.html", tmp_path)
    assert len(shown["images"]) == 4
    for image in shown["images"]:
        assert image["complete"] and image["naturalWidth"] > 0 and image["shownWidth"] > 100, image
    assert shown["sections"] == [*ALWAYS_THERE[:3], "baseline", *ALWAYS_THERE[3:5], "trials", *ALWAYS_THERE[5:]]
    for section, title in SECTION_TITLES.items():
        assert any(heading.startswith(title) for heading in shown["headings"]), section
    assert shown["overflow"] <= 0, "the page is wider than the window"


@needs_chromium
def test_chromium_probe_sees_a_broken_image(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<html><body><img src="data:image/png;base64,bm90IGEgcG5n"></body></html>')
    (image,) = render_in_chromium(page, tmp_path)["images"]
    assert image["naturalWidth"] == 0


# kerastrain report and kerastrain compare on the command line.


@pytest.mark.slow
def test_report_command_rewrites_the_report(finished_textcnn_run, tmp_path):
    run_dir = copy_run(finished_textcnn_run[0], tmp_path / "rewritten")
    (run_dir / "report.html").unlink()
    result = run_module("kerastrain", "report", run_dir)
    assert result.returncode == 0, result.stderr
    assert f"wrote {run_dir / 'report.html'}" in result.stdout
    assert section_ids((run_dir / "report.html").read_text())[0] == "summary"


@pytest.mark.slow
def test_compare_prints_a_table_and_draws_one_line_per_run(finished_textcnn_run, tmp_path):
    first = copy_run(finished_textcnn_run[0], tmp_path / "adam")
    second = copy_run(finished_textcnn_run[0], tmp_path / "sgd")
    # The second run's numbers are changed so that each row must come from its own run.
    rewrite_json(second / "metrics.json", lambda metrics: metrics["test"].update(accuracy=0.5, loss=0.75))
    history = pd.read_csv(second / "history.csv")
    history["val_loss"] += 1.0
    history.to_csv(second / "history.csv", index=False)
    output = tmp_path / "curves.png"
    result = run_module("kerastrain", "compare", first, second, "--output", output)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "run", "test", "accuracy", "test", "loss", "macro", "F1", "epochs", "examples/s", "train", "s",
        "precision", "strategy",
    ]  # fmt: skip
    metrics = json.loads((first / "metrics.json").read_text())
    adam_row = next(line for line in lines if line.startswith("adam ")).split()
    sgd_row = next(line for line in lines if line.startswith("sgd ")).split()
    assert adam_row[1:5] == [
        f"{metrics['test']['accuracy']:.4f}", f"{metrics['test']['loss']:.4f}",
        f"{metrics['test']['macro_f1']:.4f}", str(metrics["epochs"]),
    ]  # fmt: skip
    assert sgd_row[1:3] == ["0.5000", "0.7500"]
    assert adam_row[-1] == sgd_row[-1] == "default"
    picture = matplotlib_image.imread(output)
    assert picture.shape[0] > 300 and picture.shape[1] > 600

    figure = plots.plot_run_comparison({"adam": pd.read_csv(first / "history.csv"), "sgd": history})
    loss_axis, accuracy_axis = figure.axes
    assert [line.get_label() for line in loss_axis.lines] == ["adam", "sgd"]
    np.testing.assert_allclose(loss_axis.lines[1].get_ydata(), history["val_loss"])
    assert [line.get_label() for line in accuracy_axis.lines] == ["adam", "sgd"]


def test_compare_labels_runs_of_the_same_folder_name_by_path():
    assert compare.run_labels(["a/textcnn", "b/textcnn", "c/mlp/"]) == ["a/textcnn", "b/textcnn", "mlp"]


def unfinished_run(tmp_path):
    folder = tmp_path / "unfinished"
    folder.mkdir()
    (folder / "config.json").write_text('{"config": {}, "environment": {}}')
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, problem",
    [
        ("report missing", "does not exist"),
        ("report unfinished", "holds no finished run (metrics.json is missing)"),
        ("compare missing", "does not exist"),
        ("compare unfinished", "holds no finished run (metrics.json is missing)"),
        ("compare jpg", "Expected --output to be a .png file"),
        ("compare no runs", "the following arguments are required: RUN_DIR"),
    ],
)
def test_bad_input_gets_one_line_and_exit_status_2(command, problem, finished_textcnn_run, tmp_path):
    run_dir = finished_textcnn_run[0]
    folder = {"missing": tmp_path / "no_such_run", "unfinished": unfinished_run(tmp_path)}.get(command.split()[1])
    arguments = {
        "report missing": ["report", folder],
        "report unfinished": ["report", folder],
        "compare missing": ["compare", run_dir, folder, "--output", tmp_path / "out.png"],
        "compare unfinished": ["compare", run_dir, folder, "--output", tmp_path / "out.png"],
        "compare jpg": ["compare", run_dir, "--output", tmp_path / "out.jpg"],
        "compare no runs": ["compare"],
    }[command]
    result = run_module("kerastrain", *arguments, timeout=120)
    assert result.returncode == 2, result.stderr
    (line,) = error_lines(result)
    assert line.startswith("error: ") and problem in line, line
    if folder is not None:
        assert str(folder) in line and "Pass the --output-dir" in line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.png").exists()


def test_open_finished_run_raises_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        run_folder.open_finished_run(tmp_path / "nothing")


@pytest.mark.parametrize("arguments", [["--help"], ["report", "--help"], ["compare", "--help"]])
def test_help_answers_without_importing_tensorflow(arguments):
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy, sys\n"
            f"sys.argv = ['kerastrain', *{arguments!r}]\n"
            "try:\n"
            "    runpy.run_module('kerastrain', run_name='__main__')\n"
            "except SystemExit as exit:\n"
            "    print('exit', exit.code)\n"
            "print('tensorflow' in sys.modules)\n",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert "usage: kerastrain" in probe.stdout
    assert probe.stdout.strip().splitlines()[-2:] == ["exit 0", "False"]


def test_console_script_points_at_the_command():
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    (entry,) = [line for line in setup["options.entry_points"]["console_scripts"].splitlines() if line.strip()]
    name, target = (part.strip() for part in entry.split("="))
    module_name, function_name = target.split(":")
    assert name == "kerastrain"
    assert getattr(importlib.import_module(module_name), function_name) is importlib.import_module(
        "kerastrain.commands"
    ).run
