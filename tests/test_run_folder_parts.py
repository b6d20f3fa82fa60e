"""RunFolder: checking, creating and reading a run folder, without training."""

import numpy as np
import pytest

from kerastrain import run_folder
from kerastrain.backend import tf
from kerastrain.config import MLPConfig, TextCNNConfig
from kerastrain.data.examples import Examples
from kerastrain.errors import UsageError
from kerastrain.feature_scaling import FeatureScaler


def create(run, config, environment=None):
    """Creates `run` as the pipeline does before training, for two examples and a fitted preprocessor."""
    examples = Examples(np.eye(2, dtype=np.float32), np.asarray(["a", "b"], dtype=object), "test", ["x", "y"])
    preprocessor = FeatureScaler().fit(examples.inputs, feature_names=examples.feature_names)
    run.create("textcnn", config, environment, run_folder.describe_data(examples), preprocessor, ["a", "b"])


def test_check_config_of_a_new_folder_passes(tmp_path):
    run_folder.RunFolder(tmp_path / "new").check_config(TextCNNConfig())
    run_folder.RunFolder(tmp_path).check_config(TextCNNConfig())  # exists, empty
    assert list(tmp_path.iterdir()) == []


def test_check_config_same_config_passes(tmp_path):
    run = run_folder.RunFolder(tmp_path / "run")
    config = TextCNNConfig(epochs=2, kernel_sizes=(2, 3))
    create(run, config, {"tensorflow": tf.__version__})
    run.check_config(TextCNNConfig(epochs=2, kernel_sizes=(2, 3)))
    run.check_config(TextCNNConfig(epochs=2, kernel_sizes=(2, 3), verbose=0, output_dir="elsewhere"))
    stored = run.read_json(run_folder.CONFIG)
    assert stored["config"]["epochs"] == 2
    assert stored["environment"] == {"tensorflow": tf.__version__}
    assert (tmp_path / "run" / "checkpoints").is_dir()


def test_check_config_different_config_names_the_field(tmp_path):
    run = run_folder.RunFolder(tmp_path)
    create(run, TextCNNConfig(epochs=2))
    with pytest.raises(UsageError) as excinfo:
        run.check_config(TextCNNConfig(epochs=3))
    message = str(excinfo.value)
    assert "epochs: 2 there, 3 now" in message
    assert "more" not in message
    with pytest.raises(UsageError) as excinfo:
        run.check_config(TextCNNConfig(epochs=3, batch_size=8, seed=4))
    assert "and 2 more" in str(excinfo.value)


def test_check_config_of_another_recipe_refuses(tmp_path):
    run = run_folder.RunFolder(tmp_path)
    create(run, TextCNNConfig())
    with pytest.raises(UsageError, match="different config"):
        run.check_config(MLPConfig())


def test_create_does_not_overwrite_the_stored_config(tmp_path):
    run = run_folder.RunFolder(tmp_path)
    create(run, TextCNNConfig(epochs=2))
    create(run, TextCNNConfig(epochs=5))
    assert run.read_json(run_folder.CONFIG)["config"]["epochs"] == 2


def a_non_empty_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    return tmp_path


def a_file(tmp_path):
    path = tmp_path / "run.txt"
    path.write_text("not a folder")
    return path


def a_folder_with_an_unreadable_config(tmp_path):
    (tmp_path / run_folder.CONFIG).write_text("{not json")
    return tmp_path


@pytest.mark.parametrize(
    "make_path, message",
    [
        (a_non_empty_foreign_folder, "non-empty folder"),
        (a_file, "is a file"),
        (a_folder_with_an_unreadable_config, "unreadable"),
    ],
    ids=["non-empty-folder", "file", "unreadable-config"],
)
def test_check_config_refuses(tmp_path, make_path, message):
    path = make_path(tmp_path)
    with pytest.raises(UsageError) as excinfo:
        run_folder.RunFolder(path).check_config(TextCNNConfig())
    assert message in str(excinfo.value)
    assert str(path) in str(excinfo.value)


def test_finished_means_metrics_exist(tmp_path):
    run = run_folder.RunFolder(tmp_path)
    assert not run.finished
    run.write_json(run_folder.METRICS, {"accuracy": 1.0})
    assert run.finished
    assert run.read_json(run_folder.METRICS) == {"accuracy": 1.0}
    assert sorted(item.name for item in tmp_path.iterdir()) == ["metrics.json"]


def test_read_history_dedupes_repeated_epochs_keeping_the_last(tmp_path):
    (tmp_path / run_folder.HISTORY).write_text(
        "epoch,loss,val_loss\n1,1.0,1.1\n2,0.8,0.9\n3,0.7,0.8\n2,0.6,0.65\n3,0.5,0.55\n4,0.4,0.45\n"
    )
    history = run_folder.RunFolder(tmp_path).read_history()
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    assert history["loss"].tolist() == [1.0, 0.6, 0.5, 0.4]
    assert history.index.tolist() == [0, 1, 2, 3]


def test_read_history_without_a_file(tmp_path):
    history = run_folder.RunFolder(tmp_path).read_history()
    assert len(history) == 0
    assert "epoch" in history
