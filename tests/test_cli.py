"""The command line as users meet it: help, bad input, refusals and prediction."""

import gzip
import hashlib
import pathlib
import subprocess
import sys

import pandas as pd
import pytest

from conftest import error_lines, run_module

TEXTCNN = "kerastrain.recipes.textcnn"
MLP = "kerastrain.recipes.mlp"


def test_help_answers_without_importing_tensorflow():
    result = run_module(TEXTCNN, "--help")
    assert result.returncode == 0
    assert "--strategy" in result.stdout and "--precision" in result.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy, sys\n"
            "sys.argv = ['textcnn', '--help']\n"
            "try:\n"
            "    runpy.run_module('kerastrain.recipes.textcnn', run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            "print('tensorflow' in sys.modules, 'pandas' in sys.modules)\n",
        ],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip().splitlines()[-1] == "False False"


def write_gzip_truncated(path, frame):
    with gzip.open(path, "wt") as file:
        frame.to_csv(file, index=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_INPUTS = {
    "missing file": (["--data", "no/such/file.csv"], "no such file"),
    "unknown dataset": (["--data", "imbd"], "neither a file nor a dataset name"),
    "missing text column": (["--text-column", "body"], "'body' is not a column"),
    "missing label column": (["--label-column", "category"], "'category' is not a column"),
    "empty file": ("empty", "is empty"),
    "header only": ("header", "no rows"),
    "only blank texts": ("blank", "no row with both a text"),
    "one class": ("one_class", "single class"),
    "truncated gzip": ("truncated", "corrupt or truncated"),
    "not gzip": ("not_gzip", "corrupt or truncated"),
    "unknown optimizer": (["--optimizer", "adamw"], "invalid choice: 'adamw'"),
    "unknown strategy": (["--strategy", "tpu"], "invalid choice: 'tpu'"),
    "negative epochs": (["--epochs", "-1"], "--epochs >= 1"),
    "zero batch size": (["--batch-size", "0"], "--batch-size >= 1"),
    "not a number": (["--learning-rate", "fast"], "invalid float value"),
    "bad kernel list": (["--kernel-sizes", "3,x"], "integers separated by commas"),
    "missing preset": (["--config", "recipes/nope.toml"], "no such file"),
    "cpu devices without mirrored": (["--cpu-devices", "2"], "only applies to --strategy mirrored"),
    "float16 under parameter servers": (
        ["--strategy", "parameter_server", "--precision", "mixed_float16"],
        "Use --precision mixed_bfloat16",
    ),
    "local cluster without parameter servers": (["--local-cluster", "workers=2,ps=1"], "only applies to --strategy parameter_server"),
    "bad local cluster": (["--strategy", "parameter_server", "--local-cluster", "workers=2"], "like workers=2,ps=1"),
    "parameter servers without a cluster": (["--strategy", "parameter_server"], "needs a cluster"),
    "malformed TF_CONFIG": (["--strategy", "multi_worker_mirrored"], "TF_CONFIG is not valid JSON"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_one_line_and_exit_status_2(case, tmp_path, sms_sample_csv):
    arguments, expected = BAD_INPUTS[case]
    if isinstance(arguments, str):
        path = tmp_path / "data.csv"
        if arguments == "empty":
            path.write_text("")
        elif arguments == "header":
            path.write_text("text,label\n")
        elif arguments == "blank":
            path.write_text("text,label\n,ham\n   ,spam\n")
        elif arguments == "one_class":
            path.write_text("text,label\nhello there,ham\nsee you,ham\nok then,ham\n")
        elif arguments == "truncated":
            path = tmp_path / "data.csv.gz"
            write_gzip_truncated(path, pd.read_csv(sms_sample_csv))
        elif arguments == "not_gzip":
            path = tmp_path / "data.csv.gz"
            path.write_bytes(b"text,label\nnot really gzip,ham\n")
        arguments = ["--data", path]
    elif arguments[0] != "--data" and arguments[0] != "--config":
        arguments = ["--data", sms_sample_csv, *arguments]
    output = tmp_path / "run"
    environment = {"TF_CONFIG": "{not json"} if case == "malformed TF_CONFIG" else {}
    result = run_module(TEXTCNN, *arguments, "--output-dir", output, timeout=120, environment=environment)
    lines = error_lines(result)
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not output.exists(), "a failed run must not leave a folder behind"


@pytest.mark.slow
def test_debug_shows_the_traceback(tmp_path):
    result = run_module(TEXTCNN, "--data", tmp_path / "missing.csv", "--debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "UsageError" in result.stderr


@pytest.mark.slow
def test_mlp_rejects_a_non_numeric_table_without_text_column(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("colour,size,label\nred,1,a\nblue,2,b\nred,3,a\nblue,4,b\n")
    result = run_module(MLP, "--data", path, "--output-dir", tmp_path / "run")
    assert result.returncode == 2
    assert error_lines(result) == [
        f"error: {path} has non-numeric column 'colour' and no text column. Pass --text-column "
        "NAME for a text dataset, or give numeric feature columns only."
    ]


def folder_digest(path):
    digest = hashlib.sha256()
    for file in sorted(pathlib.Path(path).rglob("*")):
        if file.is_file():
            digest.update(str(file.relative_to(path)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_a_finished_run_is_neither_retrained_nor_overwritten(finished_textcnn_run):
    run_dir, arguments = finished_textcnn_run
    before = folder_digest(run_dir)
    different = run_module(TEXTCNN, *arguments, "--epochs", "7")
    assert different.returncode == 2
    (line,) = error_lines(different)
    assert "holds a run with a different config (epochs: 3 there, 7 now)" in line
    assert "--output-dir" in line
    same = run_module(TEXTCNN, *arguments)
    assert same.returncode == 0, same.stderr
    assert "already holds this finished run" in same.stdout
    assert folder_digest(run_dir) == before


@pytest.mark.slow
def test_predict_classifies_raw_text_and_csv(finished_textcnn_run, sms_sample_csv, tmp_path):
    run_dir, _ = finished_textcnn_run
    result = run_module("kerastrain.export.predict", run_dir, "--text", "hello", "--text", "call now")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2 and all('"prediction": "' in line for line in lines)
    output = tmp_path / "predictions.csv"
    result = run_module("kerastrain.export.predict", run_dir, "--csv", sms_sample_csv, "--output", output)
    assert result.returncode == 0, result.stderr
    predictions = pd.read_csv(output)
    assert set(predictions["prediction"]) <= {"ham", "spam"}
    assert (predictions["prediction"] == predictions["label"]).mean() > 0.9


@pytest.mark.slow
def test_predict_rejects_a_folder_without_a_finished_run(tmp_path):
    result = run_module("kerastrain.export.predict", tmp_path, "--text", "hello")
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert "holds no finished run (model.keras is missing)" in line


@pytest.mark.slow
def test_predict_names_its_own_flag_for_a_missing_csv(finished_textcnn_run, tmp_path):
    run_dir, _ = finished_textcnn_run
    result = run_module("kerastrain.export.predict", run_dir, "--csv", tmp_path / "absent.csv")
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert line == f"error: --csv {tmp_path / 'absent.csv'}: no such file. Pass the path of a CSV file (.csv or .csv.gz)."
