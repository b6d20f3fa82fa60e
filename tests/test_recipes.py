"""Both recipes end to end on small real data, as scripts and from Python."""

import json
import math
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, SERVERS, TINY_TEXTCNN, error_lines, run_module
from kerastrain import config as config_lib
from kerastrain import run_folder
from kerastrain.export.predict import Predictor

RUN_FILES = (
    "config.json", "model.keras", "preprocessor.joblib", "classes.json", "history.csv",
    "history.png", "classification_report.txt", "confusion_matrix.png", "metrics.json",
    "checkpoints/best.h5",
)  # fmt: skip


@pytest.mark.slow
def test_textcnn_run_writes_every_output(finished_textcnn_run):
    run_dir, _ = finished_textcnn_run
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # 87% of the SMS are ham: a model that learned nothing scores about 0.87.
    assert metrics["test"]["accuracy"] > 0.9
    assert metrics["test"]["loss"] > 0
    assert metrics["train_seconds"] > 0 and metrics["examples_per_second"] > 0
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3]  # as on the console and in the report
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "examples_per_second"} <= set(history)
    report = (run_dir / "classification_report.txt").read_text()
    assert "ham" in report and "spam" in report
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["recipe"] == "textcnn"
    assert stored["config"]["epochs"] == 3 and stored["environment"]["precision"]
    assert stored["environment"]["strategy"] == "default"
    assert stored["data"]["examples"] == 800 and len(stored["data"]["fingerprint"]) == 64
    assert stored["preprocessor"]["fingerprint"] == run_folder.file_digest(run_dir / "preprocessor.joblib")


@pytest.mark.slow
def test_textcnn_refits_on_training_and_validation_for_the_best_epoch_count(finished_textcnn_run):
    import joblib

    from kerastrain import data
    from kerastrain.data import splits
    from kerastrain.recipes import textcnn

    run_dir, _ = finished_textcnn_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = pd.read_csv(run_dir / "history.csv")
    assert metrics["refit"]["epochs"] == int(history.loc[history["val_loss"].idxmin(), "epoch"])
    assert metrics["refit"]["train_seconds"] > 0 and metrics["refit"]["examples_per_second"] > 0
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["preprocessor"]["refit"] is True
    assert stored["preprocessor"]["fingerprint"] == run_folder.file_digest(run_dir / "preprocessor.joblib")
    # The saved preprocessor is the refitted model's: fitted on both splits, not the training split
    # alone, in the first one's shapes, so that the first model's compiled step trained it.
    config = config_lib.TextCNNConfig.from_dict(stored["config"])
    split = splits.split_as_configured(data.load_examples(config.data, config.text_column, config.label_column), config)
    assert metrics["refit"]["examples"] == len(split.train) + len(split.validation) == 640
    assert metrics["refit"]["reused_training_step"] is True
    saved = joblib.load(run_dir / "preprocessor.joblib")
    on_train = textcnn.fit_preprocessor(config, split.train)
    on_both = textcnn.refit_preprocessor(config, on_train, splits.join(split.train, split.validation))
    for name in ("tokens", "ngrams"):
        assert saved.vectorizers[name].vocabulary_ == on_both.vectorizers[name].vocabulary_
        assert saved.vectorizers[name].vocabulary_ != on_train.vectorizers[name].vocabulary_
        assert saved.vectorizers[name].vocabulary_size == on_train.vectorizers[name].vocabulary_size
        assert saved.vectorizers[name].sequence_length_ == on_train.vectorizers[name].sequence_length_
    np.testing.assert_array_equal(saved.vectorizers["ngrams"].log_count_ratios_, on_both.vectorizers["ngrams"].log_count_ratios_)
    assert saved.ngram_start_.l2 == on_train.ngram_start_.l2
    report = (run_dir / "report.html").read_text()
    assert "The test scores are those of a model trained anew" in report
    assert "The baseline learns from the training and validation splits, as the refitted model does" in report


@pytest.mark.slow
def test_an_interrupted_refit_reruns_the_refit_alone(finished_textcnn_run, tmp_path):
    import shutil

    run_dir, arguments = finished_textcnn_run
    interrupted = tmp_path / "interrupted"
    shutil.copytree(run_dir, interrupted)
    # As a run stopped during its refit leaves its folder: no model.keras, no metrics.json.
    (interrupted / "metrics.json").unlink()
    (interrupted / "model.keras").unlink()
    history = (interrupted / "history.csv").read_bytes()
    flags = [*arguments[: arguments.index("--output-dir")], "--output-dir", str(interrupted)]
    result = run_module("kerastrain.recipes.textcnn", *flags)
    assert result.returncode == 0, result.stderr
    assert "kerastrain: refit: a new model on the 640 training and validation examples" in result.stdout
    assert (interrupted / "history.csv").read_bytes() == history  # the first model was not trained again
    metrics = json.loads((interrupted / "metrics.json").read_text())
    assert metrics["refit"]["epochs"] == json.loads((run_dir / "metrics.json").read_text())["refit"]["epochs"]
    assert metrics["refit"]["reused_training_step"] is True  # the first model, built again and never trained
    assert Predictor.load(interrupted).predict(["Free entry! Win a prize now"]) in (["ham"], ["spam"])


@pytest.mark.slow
def test_saved_run_predicts_like_the_trained_model(finished_textcnn_run, sms_sample_csv):
    run_dir, _ = finished_textcnn_run
    frame = pd.read_csv(sms_sample_csv)
    predictor = Predictor.load(run_dir)
    texts = frame["text"].tolist()[:50]
    probabilities = predictor.predict_proba(texts)
    assert probabilities.shape == (50, 2)
    assert abs(probabilities.sum(axis=1) - 1).max() < 1e-4
    assert predictor.predict(texts) == [predictor.class_names[i] for i in probabilities.argmax(axis=1)]


@pytest.mark.slow
def test_mlp_on_bundled_digits_from_python(tmp_path):
    from kerastrain.recipes import mlp

    config = config_lib.resolve(
        config_lib.MLPConfig, "digits_mlp", {"epochs": 4, "verbose": 0, "output_dir": str(tmp_path / "digits")}
    )
    metrics = mlp.main(config).metrics
    assert metrics["test"]["accuracy"] > 0.85  # ten classes: chance is 0.1
    assert json.loads((tmp_path / "digits" / "classes.json").read_text()) == [str(d) for d in range(10)]
    assert metrics["baseline"]["model"] == "standardized features + logistic regression"
    assert metrics["baseline"]["accuracy"] > 0.85
    assert (tmp_path / "digits" / "report.html").is_file()


@pytest.mark.slow
def test_mlp_on_a_numeric_csv_scales_features_and_predicts_from_csv(tmp_path, digits_csv):
    from kerastrain.recipes import mlp

    run_dir = tmp_path / "csv_mlp"
    config = config_lib.MLPConfig(data=str(digits_csv), epochs=3, verbose=0, output_dir=str(run_dir))
    config.validate()
    mlp.main(config)
    predictor = Predictor.load(run_dir)
    scaler = predictor.preprocessor
    assert scaler.scaler_.mean_.shape == (64,) and scaler.scaler_.scale_.max() > 1  # fitted on raw pixels
    assert scaler.feature_names[:2] == ["pixel1", "pixel2"]
    result = run_module("kerastrain.export.predict", run_dir, "--csv", digits_csv, "--output", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    predictions = pd.read_csv(tmp_path / "out.csv")
    assert (predictions["prediction"] == predictions["label"]).mean() > 0.85
    # The same rows with their columns in reverse order: picked by name, so the same predictions.
    reversed_csv = tmp_path / "reversed.csv"
    pd.read_csv(digits_csv).iloc[:, ::-1].to_csv(reversed_csv, index=False)
    result = run_module("kerastrain.export.predict", run_dir, "--csv", reversed_csv, "--output", tmp_path / "reversed_out.csv")
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(tmp_path / "reversed_out.csv")["prediction"].tolist() == predictions["prediction"].tolist()
    # A CSV without one of the training columns is refused, naming it.
    partial_csv = tmp_path / "partial.csv"
    pd.read_csv(digits_csv).drop(columns=["pixel7"]).to_csv(partial_csv, index=False)
    result = run_module("kerastrain.export.predict", run_dir, "--csv", partial_csv)
    assert result.returncode == 2
    assert error_lines(result) == [
        f"error: {partial_csv} lacks feature column 'pixel7' that the model was trained on. "
        "Pass a CSV with the training columns."
    ]
    # Rows as an array, in the training columns' order, need no names.
    rows = pd.read_csv(digits_csv).drop(columns=["label"]).to_numpy()[:20]
    assert [str(name) for name in predictor.predict(rows)] == predictions["prediction"].astype(str).tolist()[:20]


@pytest.mark.slow
def test_mlp_on_text_uses_tfidf_features(tmp_path, sms_sample_csv):
    from kerastrain.recipes import mlp

    config = config_lib.MLPConfig(
        data=str(sms_sample_csv), epochs=4, verbose=0, max_features=500, batch_size=32, learning_rate=0.005,
        output_dir=str(tmp_path / "text_mlp"),
    )
    config.validate()
    metrics = mlp.main(config).metrics
    assert metrics["test"]["accuracy"] > 0.9
    assert metrics["baseline"]["model"].startswith("TF-IDF") and metrics["baseline"]["accuracy"] > 0.8
    predictor = Predictor.load(tmp_path / "text_mlp")
    assert predictor.takes_text and predictor.preprocessor.output == "tfidf"
    assert predictor.predict(["see you at home tonight"]) in (["ham"], ["spam"])


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path, sms_sample_csv):
    run_dir = tmp_path / "mirrored"
    result = run_module(
        "kerastrain.recipes.textcnn",
        "--data", sms_sample_csv, "--strategy", "mirrored", "--cpu-devices", "2",
        "--epochs", "2", *TINY_TEXTCNN,
        "--learning-rate", "0.01", "--batch-size", "32",
        "--verbose", "0", "--output-dir", run_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    environment = json.loads((run_dir / "config.json").read_text())["environment"]
    assert environment["strategy"] == "mirrored" and environment["replicas"] == 2
    assert environment["jit_compile"] is False  # XLA cannot span logical CPU devices
    assert json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"] > 0.8


@pytest.mark.slow
@SERVERS
@pytest.mark.parametrize(
    "strategy",
    [[], ["--strategy", "parameter_server", "--local-cluster", "workers=2,ps=1"]],
    ids=["one_process", "parameter_server"],
)
def test_killed_run_resumes_from_its_last_epoch(tmp_path, sms_sample_csv, strategy):
    run_dir = tmp_path / "resumed"
    epochs = 6
    command = [
        sys.executable, "-m", "kerastrain.recipes.textcnn", "--data", str(sms_sample_csv),
        "--epochs", str(epochs), "--early-stopping-patience", "0", *TINY_TEXTCNN,
         "--batch-size", "16", "--verbose", "0",
        "--output-dir", str(run_dir), *strategy,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history_file = run_dir / "history.csv"
    deadline = time.monotonic() + 240
    rows_before_kill = 0
    while time.monotonic() < deadline and process.poll() is None:
        if history_file.exists():
            logged_before_kill = pd.read_csv(history_file)
            rows_before_kill = len(logged_before_kill)
            if rows_before_kill >= 2:
                break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "metrics.json").exists()

    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "retracing" not in result.stderr  # TensorFlow's own, per checkpoint save, under parameter servers
    # The backup is taken after the log line, so at most one epoch is done twice,
    # and its earlier row is dropped when it runs again: every epoch is logged once.
    history = pd.read_csv(history_file)
    assert list(history["epoch"]) == list(range(1, epochs + 1))
    # Resumed, not restarted: the epochs before the last backup keep their rows.
    kept = rows_before_kill - 1
    assert history["epoch_seconds"].iloc[:kept].tolist() == logged_before_kill["epoch_seconds"].iloc[:kept].tolist()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == epochs
    if strategy:  # workers.csv is trimmed like history.csv: one row per epoch and worker
        workers = pd.read_csv(run_dir / "workers.csv")
        assert sorted(zip(workers["epoch"], workers["worker"])) == [(e, w) for e in range(1, epochs + 1) for w in (0, 1)]
    else:
        assert not (run_dir / "workers.csv").exists()
    # The same run uninterrupted scores 0.9625; 87% of these SMS are ham.
    assert metrics["test"]["accuracy"] > 0.93


@pytest.mark.slow
@SERVERS
def test_parameter_server_training_on_an_in_process_cluster(tmp_path, sms_sample_csv):
    run_dir = tmp_path / "parameter_server"
    result = run_module(
        "kerastrain.recipes.textcnn",
        "--data", sms_sample_csv, "--strategy", "parameter_server", "--local-cluster", "workers=2,ps=1",
        "--epochs", "3", *TINY_TEXTCNN,
        "--learning-rate", "0.01", "--batch-size", "32", "--output-dir", run_dir,
        timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # The policy depends on the machine (--precision auto); the cluster shape does not.
    assert re.search(r"(float32|mixed_bfloat16) on 2 workers, 1 ps", result.stdout), result.stdout
    environment = json.loads((run_dir / "config.json").read_text())["environment"]
    assert environment["strategy"] == "parameter_server"
    assert environment["cluster"] == {"worker": 2, "ps": 1} and environment["jit_compile"] is False
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.9 and metrics["epochs"] == 3
    assert metrics["steps_per_epoch"] == math.ceil(metrics["train_examples"] / 32)
    # Each worker counted its own steps: together they are every step of each epoch.
    workers = run_folder.RunFolder(run_dir).read_workers()
    assert sorted(set(workers["worker"])) == [0, 1] and set(workers["source"]) == {"counted"}
    assert workers.groupby("epoch")["steps"].sum().tolist() == [metrics["steps_per_epoch"]] * 3
    assert (workers.groupby("worker")["steps"].sum() > 0).all()
    assert workers.groupby("epoch")["examples"].sum().tolist() == [metrics["train_examples"]] * 3
    report = (run_dir / "report.html").read_text()
    assert "2 workers, 1 ps" in report and "Each worker counted the training steps it ran" in report
    # Predictions from the saved model need no cluster.
    assert Predictor.load(run_dir).predict(["see you soon"]) in (["ham"], ["spam"])


@pytest.mark.slow
def test_tensorboard_logs_are_written(tmp_path):
    from kerastrain.recipes import mlp

    config = config_lib.MLPConfig(epochs=2, verbose=0, tensorboard=True, output_dir=str(tmp_path / "tb"))
    config.validate()
    mlp.main(config)
    for part in ("train", "validation"):
        events = list((tmp_path / "tb" / "tensorboard" / part).glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 0


def test_tensorboard_without_its_package_is_refused_before_anything_runs(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "tensorboard" else real_find_spec(name, *args)
    )
    with pytest.raises(config_lib.UsageError, match=r'pip install "kerastrain\[tensorboard\]"'):
        config_lib.MLPConfig(tensorboard=True).validate()
