"""Run folders: default names, and resuming only the same run on the same data."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from conftest import TINY_TEXTCNN, error_lines, run_module
from kerastrain import config as config_lib
from kerastrain import run_folder
from kerastrain.data.examples import Examples
from kerastrain.errors import UsageError


def test_default_path_is_recipe_and_data_when_nothing_else_differs():
    assert run_folder.default_path("textcnn", config_lib.TextCNNConfig()) == "runs/textcnn-sms"
    assert run_folder.default_path("mlp", config_lib.MLPConfig()) == "runs/mlp-digits"
    assert run_folder.default_path("mlp", config_lib.MLPConfig(data="sms")) == "runs/mlp-sms"


def test_default_path_digests_the_settings_that_differ():
    base = run_folder.default_path("textcnn", config_lib.TextCNNConfig(epochs=3))
    assert base.startswith("runs/textcnn-sms-") and len(base.rsplit("-", 1)[1]) == 6
    assert base == run_folder.default_path("textcnn", config_lib.TextCNNConfig(epochs=3))  # the same command
    assert base != run_folder.default_path("textcnn", config_lib.TextCNNConfig(epochs=4))
    # Where and how loudly a run goes does not make it another run.
    assert base == run_folder.default_path("textcnn", config_lib.TextCNNConfig(epochs=3, verbose=0))


def test_default_path_of_a_file_is_named_after_it_and_digests_its_path():
    first = run_folder.default_path("textcnn", config_lib.TextCNNConfig(data="data/reviews.csv.gz"))
    second = run_folder.default_path("textcnn", config_lib.TextCNNConfig(data="other/reviews.csv.gz"))
    assert first.startswith("runs/textcnn-reviews-") and second.startswith("runs/textcnn-reviews-")
    assert first != second


def test_default_path_of_data_in_memory_digests_its_fingerprint():
    examples = Examples(["a b", "c d"], np.asarray(["x", "y"], dtype=object), "a pandas DataFrame")
    other = Examples(["a b", "c e"], np.asarray(["x", "y"], dtype=object), "a pandas DataFrame")
    config = config_lib.TextCNNConfig(data="dataframe")
    first = run_folder.default_path("textcnn", config, run_folder.fingerprint_examples(examples))
    assert first.startswith("runs/textcnn-dataframe-")
    assert first != run_folder.default_path("textcnn", config, run_folder.fingerprint_examples(other))


def test_fingerprints_change_with_any_input_label_or_order():
    labels = np.asarray(["ham", "spam", "ham"], dtype=object)
    base = run_folder.fingerprint_examples(Examples(["a", "b", "c"], labels, "x"))
    assert base == run_folder.fingerprint_examples(Examples(["a", "b", "c"], labels.copy(), "elsewhere"))
    assert base != run_folder.fingerprint_examples(Examples(["a", "b", "d"], labels, "x"))
    assert base != run_folder.fingerprint_examples(Examples(["a", "c", "b"], labels, "x"))
    assert base != run_folder.fingerprint_examples(Examples(["a", "b", "c"], labels[[1, 0, 2]], "x"))
    assert base != run_folder.fingerprint_examples(Examples(["ab", "", "c"], labels, "x"))  # no ambiguity
    rows = np.arange(6, dtype=np.float32).reshape(3, 2)
    numeric = run_folder.fingerprint_examples(Examples(rows, labels, "x", ["p1", "p2"]))
    assert numeric != run_folder.fingerprint_examples(Examples(rows, labels, "x", ["p2", "p1"]))
    rows[0, 0] = 0.5
    assert numeric != run_folder.fingerprint_examples(Examples(rows, labels, "x", ["p1", "p2"]))


def checksums(folder):
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.slow
def test_resuming_on_changed_data_is_refused_and_leaves_the_folder_as_it_was(tmp_path, sms_sample_csv):
    run_dir = tmp_path / "run"
    data = tmp_path / "sms.csv"
    frame = pd.read_csv(sms_sample_csv)
    frame.to_csv(data, index=False)
    arguments = ["--data", data, "--epochs", "1", *TINY_TEXTCNN, "--verbose", "0", "--output-dir", run_dir]
    assert run_module("kerastrain.recipes.textcnn", *arguments).returncode == 0
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["data"]["examples"] == len(frame)
    # An interrupted run (no metrics.json yet) whose data then changes; the
    # vocabulary would be the same size, so nothing else would notice.
    (run_dir / "metrics.json").unlink()
    before = checksums(run_dir)
    frame.loc[0, "text"] = frame.loc[0, "text"] + " again"
    frame.to_csv(data, index=False)
    result = run_module("kerastrain.recipes.textcnn", *arguments)
    assert result.returncode == 2
    assert error_lines(result) == [
        f"error: --output-dir {run_dir} holds a run trained on other data: --data {data} now has "
        f"{len(frame)} examples ({len(frame)} then) with other content. Pass a new --output-dir to train on the "
        "data as it is, or restore the data to resume that run."
    ]
    assert checksums(run_dir) == before
    # A replaced preprocessor is refused too, and the run resumes once the data is restored.
    pd.read_csv(sms_sample_csv).to_csv(data, index=False)
    original = (run_dir / "preprocessor.joblib").read_bytes()
    (run_dir / "preprocessor.joblib").write_bytes(original + b"\0")
    result = run_module("kerastrain.recipes.textcnn", *arguments)
    assert result.returncode == 2 and "is not the preprocessor this run was trained with" in result.stderr
    (run_dir / "preprocessor.joblib").write_bytes(original)
    result = run_module("kerastrain.recipes.textcnn", *arguments)
    assert result.returncode == 0, result.stderr
    assert (run_dir / "metrics.json").is_file()
    assert (run_dir / "preprocessor.joblib").read_bytes() == original  # kept, not fitted again


def test_a_folder_of_another_recipe_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"recipe": "mlp", "config": config_lib.MLPConfig().to_dict()}))
    with pytest.raises(UsageError, match="holds a run of the mlp recipe, not textcnn"):
        run_folder.RunFolder(tmp_path).check_config(config_lib.TextCNNConfig(), "textcnn")


def test_history_of_older_run_folders_is_renumbered_from_one(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss\n0,0.5\n1,0.4\n")
    assert run_folder.RunFolder(tmp_path).read_history()["epoch"].tolist() == [1, 2]
    (tmp_path / "history.csv").write_text("epoch,loss\n1,0.5\n2,0.4\n")
    assert run_folder.RunFolder(tmp_path).read_history()["epoch"].tolist() == [1, 2]


def test_a_folder_of_an_earlier_version_without_a_new_setting_is_named_as_such(tmp_path):
    stored = config_lib.TextCNNConfig().to_dict()
    del stored["augment"]
    (tmp_path / "config.json").write_text(json.dumps({"config": stored}))
    with pytest.raises(UsageError, match="holds a run of an earlier kerastrain, which had no --augment setting"):
        run_folder.RunFolder(tmp_path).check_config(config_lib.TextCNNConfig(), "textcnn")
