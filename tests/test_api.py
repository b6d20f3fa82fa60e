"""The Python API: `kerastrain.train`, `kerastrain.Run` and what `import kerastrain` exports."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import kerastrain
from conftest import REPO

TINY = {"embedding_dim": 16, "filters": 8, "ngram_features": 1000, "verbose": 0, "precision": "float32"}


def test_the_package_exports_the_api():
    assert {"train", "Run", "Predictor", "TextCNNConfig", "MLPConfig", "UsageError"} <= set(dir(kerastrain))
    assert kerastrain.TextCNNConfig().data == "sms"
    assert issubclass(kerastrain.UsageError, Exception)


def test_import_kerastrain_is_light():
    script = "import sys, kerastrain; print('tensorflow' in sys.modules, 'pandas' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stderr


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"epochs": 0}, "--epochs >= 1"),
        ({"optimizer": "adamw"}, "--optimizer to be one of"),
        ({"epoch": 2}, "'epoch' is not a setting of the textcnn recipe"),
        ({"output_dir": ""}, "output_dir is empty"),
        ({"ngram_weighting": "idf", "ngram_start": "naive_bayes"}, "--ngram-start only applies with --ngram-weighting nb"),
    ],
)
def test_bad_settings_raise_usage_error_and_write_nothing(tmp_path, monkeypatch, settings, message):
    monkeypatch.chdir(tmp_path)
    output = {"output_dir": str(tmp_path / "run")} if "output_dir" not in settings else {}
    with pytest.raises(kerastrain.UsageError, match=message):
        kerastrain.train("textcnn", **output, **settings)
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_recipe_or_data_type_raises_usage_error(tmp_path):
    with pytest.raises(kerastrain.UsageError, match="Expected a recipe, one of: mlp, textcnn"):
        kerastrain.train("cnn")
    with pytest.raises(kerastrain.UsageError, match="Expected data to be a CSV path"):
        kerastrain.train("textcnn", data={"text": ["a"]}, output_dir=str(tmp_path / "run"))
    with pytest.raises(kerastrain.UsageError, match="of the same length"):
        kerastrain.train("textcnn", data=(["a", "b"], ["x"]), output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_train_on_a_dataframe_returns_a_run_that_predicts(tmp_path, sms_frame):
    frame = sms_frame.sample(600, random_state=0).rename(columns={"text": "message"})
    run = kerastrain.train(
        "textcnn", data=frame, text_column="message", epochs=2, output_dir=str(tmp_path / "run"), **TINY
    )
    assert isinstance(run, kerastrain.Run)
    assert run.path == str(tmp_path / "run") and run.recipe == "textcnn"
    assert 0.8 < run.metrics["test"]["accuracy"] <= 1.0
    assert run.history["epoch"].tolist() == [1, 2] and "val_loss" in run.history
    assert run.config["data"] == "dataframe" and run.class_names == ["ham", "spam"]
    predictions = run.predictor().predict(["WINNER! Claim your free prize now", "see you at six"])
    assert set(predictions) <= {"ham", "spam"}
    # The same call again finds the finished run instead of training again.
    again = kerastrain.train(
        "textcnn", data=frame, text_column="message", epochs=2, output_dir=str(tmp_path / "run"), **TINY
    )
    assert again.metrics == run.metrics
    assert kerastrain.Run(run.path).metrics == run.metrics


@pytest.mark.slow
def test_train_on_arrays_and_on_a_config(tmp_path, monkeypatch):
    from sklearn import datasets

    monkeypatch.chdir(tmp_path)  # the default run folder goes under runs/
    digits = datasets.load_digits()
    config = kerastrain.MLPConfig(epochs=5, verbose=0, hidden_units=(64,), precision="float32")
    run = kerastrain.train(config, data=(digits.data, digits.target))
    assert run.path.startswith("runs/mlp-arrays-")
    assert run.metrics["test"]["accuracy"] > 0.7  # 10 classes: chance is 0.1
    assert set(run.predictor().predict(digits.data[:20])) <= {str(digit) for digit in range(10)}
    texts = ["good movie"] * 10 + ["bad movie"] * 10
    text_run = kerastrain.train("mlp", data=(texts, ["pos"] * 10 + ["neg"] * 10), epochs=1, verbose=0)
    assert text_run.predictor().takes_text


def test_run_of_an_unfinished_folder_raises_usage_error(tmp_path):
    with pytest.raises(kerastrain.UsageError, match="holds no finished run"):
        kerastrain.Run(tmp_path)


def test_a_dataframe_without_usable_rows_is_refused(tmp_path):
    frame = pd.DataFrame({"text": ["", None], "label": ["a", "b"]})
    with pytest.raises(kerastrain.UsageError, match="no row with both a text"):
        kerastrain.train("textcnn", data=frame, output_dir=str(tmp_path / "run"))
    numbers = pd.DataFrame({"x": np.arange(4.0), "label": ["a", "a", "a", "a"]})
    with pytest.raises(kerastrain.UsageError, match="single class"):
        kerastrain.train("mlp", data=numbers, output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_run_leaves_the_callers_float_policy_as_it_was(tmp_path):
    from kerastrain.backend import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        kerastrain.train("mlp", epochs=1, verbose=0, precision="float32", output_dir=str(tmp_path / "run"))
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
