"""Post-training quantization of finished runs: sizes, accuracy, and bad input."""

import gzip
import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import FLOAT32, error_lines, run_module

COMPRESS = "kerastrain.export.compress"


@pytest.fixture(scope="module")
def finished_mlp_run(tmp_path_factory, digits_csv):
    """A small MLP trained on the digits through the command line."""
    run_dir = tmp_path_factory.mktemp("runs") / "mlp"
    result = run_module(
        "kerastrain.recipes.mlp", "--data", digits_csv, "--epochs", "5", "--hidden-units", "64",
        "--verbose", "0", *FLOAT32, "--output-dir", run_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return run_dir


def fingerprints(run_dir):
    """A hash of every file of a run folder outside compressed/."""
    return {
        str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(run_dir.rglob("*"))
        if path.is_file() and "compressed" not in path.relative_to(run_dir).parts
    }


def float32_weight_bytes(run_dir):
    from kerastrain.export.predict import Predictor

    return sum(weight.nbytes for weight in Predictor.load(run_dir).model.get_weights())


def check_compressed(run_dir, method, in_process=False):
    """Compresses a run and checks the outputs against the run's own records.

    In-process runs skip a second TensorFlow start-up, for speed.
    """
    before = fingerprints(run_dir)
    if in_process:
        from kerastrain.export import compress

        compress.compress_run(compress.check_run(str(run_dir)), method)
    else:
        result = run_module(COMPRESS, run_dir, "--method", method)
        assert result.returncode == 0, result.stderr
        assert method in result.stdout and "float32 weights" in result.stdout
        assert "XNNPACK" not in result.stderr, "LiteRT's delegate notice reached the user"
    assert fingerprints(run_dir) == before, "the run's own files changed"

    report = json.loads((run_dir / "compressed" / "compression.json").read_text())
    compressed = report["compressed"][method]
    model_file = run_dir / "compressed" / compressed["file"]
    assert model_file.stat().st_size == compressed["file_bytes"] > 0
    assert compressed["file_bytes"] < float32_weight_bytes(run_dir)

    # The recreated test split is the training run's: same size and same accuracy.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    classes = json.loads((run_dir / "classes.json").read_text())
    report_lines = (run_dir / "classification_report.txt").read_text().splitlines()
    (test_support,) = [int(line.split()[-1]) for line in report_lines if line.strip().startswith("accuracy")]
    assert report["test_examples"] == test_support
    original = report["original"]["test"]
    assert original["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-9)
    assert original["macro_f1"] == pytest.approx(metrics["test"]["macro_f1"], abs=1e-9)

    # Quantization may flip a few borderline examples, not more: at most 2% of
    # the test examples (and at least one). A flip moves two classes' F1 scores.
    tolerance = max(0.02, 1.0 / report["test_examples"])
    after = compressed["test"]
    assert abs(after["accuracy"] - original["accuracy"]) <= tolerance
    assert abs(after["macro_f1"] - original["macro_f1"]) <= 2.5 * tolerance
    assert original["macro_f1"] > 1.0 / len(classes), "the model under test learned nothing"
    return report


@pytest.mark.slow
def test_compress_textcnn_to_int8_weights(finished_textcnn_run):
    run_dir, _ = finished_textcnn_run
    report = check_compressed(run_dir, "dynamic_int8")
    # int8 weights are a quarter of float32 ones, plus the graph and scales.
    assert report["compressed"]["dynamic_int8"]["file_bytes"] < report["original"]["weights_bytes"] / 2


@pytest.mark.slow
def test_compress_mlp_keeps_every_method_in_the_report(finished_mlp_run):
    check_compressed(finished_mlp_run, "float16")
    report = check_compressed(finished_mlp_run, "dynamic_int8", in_process=True)
    sizes = {method: result["file_bytes"] for method, result in report["compressed"].items()}
    assert set(sizes) == {"float16", "dynamic_int8"}
    assert sizes["dynamic_int8"] < sizes["float16"] < report["original"]["weights_bytes"]


@pytest.mark.slow
def test_compressed_model_predicts_like_the_original(finished_mlp_run):
    from kerastrain.export import litert
    from kerastrain.export.predict import Predictor

    predictor = Predictor.load(finished_mlp_run)
    rows = np.random.default_rng(0).normal(size=(50, 64)).astype(np.float32)
    original = predictor.model.predict(rows, verbose=0)
    for method in litert.METHODS:
        compressed = litert.LiteClassifier(litert.convert(predictor.model, method), batch_size=16).predict_proba(rows)
        assert compressed.shape == original.shape
        assert np.allclose(compressed.sum(axis=1), 1.0, atol=1e-4)
        assert np.mean(compressed.argmax(axis=1) == original.argmax(axis=1)) >= 0.9


def test_help_answers_without_importing_tensorflow():
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy, sys\n"
            "sys.argv = ['compress', '--help']\n"
            "try:\n"
            "    runpy.run_module('kerastrain.export.compress', run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            "print('tensorflow' in sys.modules)\n",
        ],
        capture_output=True,
        text=True,
    )
    assert "dynamic_int8" in probe.stdout and "float16" in probe.stdout
    assert probe.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing folder", "no such folder"),
        ("unfinished run", "metrics.json is missing"),
        ("not a run", "config.json is missing"),
        ("unknown method", "invalid choice: 'int4'"),
        ("changed data", "has changed since training"),
    ],
)
def test_bad_input_gets_one_line_and_writes_nothing(case, expected, tmp_path, finished_mlp_run):
    run_dir = tmp_path / "run"
    method = "dynamic_int8"
    if case == "unfinished run":
        run_dir.mkdir()
        (run_dir / "config.json").write_text((finished_mlp_run / "config.json").read_text())
    elif case == "not a run":
        run_dir.mkdir()
        (run_dir / "notes.txt").write_text("not a run")
    elif case == "unknown method":
        run_dir, method = finished_mlp_run, "int4"
    elif case == "changed data":
        shutil.copytree(finished_mlp_run, run_dir)
        stored = json.loads((run_dir / "config.json").read_text())
        with gzip.open(stored["config"]["data"], "rt") as file:
            lines = file.readlines()
        changed = tmp_path / "digits_edited.csv"
        changed.write_text("".join(lines[:1] + lines[2:]))  # one row fewer
        stored["config"]["data"] = str(changed)
        (run_dir / "config.json").write_text(json.dumps(stored))
    before = sorted(path.name for path in run_dir.iterdir()) if run_dir.exists() else None
    result = run_module(COMPRESS, run_dir, "--method", method)
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert (sorted(path.name for path in run_dir.iterdir()) if run_dir.exists() else None) == before


def test_mixed_precision_model_converts_through_a_float32_copy():
    from kerastrain.export import litert
    from kerastrain.backend import keras

    inputs = keras.Input(shape=(6,), name="features")
    hidden = keras.layers.Dense(16, activation="relu", dtype="mixed_bfloat16")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", dtype="float32")(hidden)
    model = keras.Model(inputs, outputs)
    copy = litert.computing_in_float32(model)
    assert copy is not model and all(layer.compute_dtype == "float32" for layer in copy.layers[1:])
    assert litert.computing_in_float32(copy) is copy
    rows = np.random.default_rng(1).normal(size=(20, 6)).astype(np.float32)
    compressed = litert.LiteClassifier(litert.convert(model, "float16")).predict_proba(rows)
    # bfloat16 keeps about 3 significant digits; the copy computes in float32.
    assert np.allclose(compressed, model.predict(rows, verbose=0), atol=0.02)
