"""The training callbacks: checkpoints, throughput, the CSV log and its trimming, the history plot."""

import math

import numpy as np
import pandas as pd
import pytest

from conftest import HISTORY_ROWS
from kerastrain import callbacks, run_folder
from kerastrain.models import build_mlp


def shift_weights(model, amount):
    model.set_weights([weights + amount for weights in model.get_weights()])


def saved_kernel(path):
    model = build_mlp(3, 2, hidden_units=(4,))
    model.load_weights(str(path))
    return model.get_layer("dense_0").kernel.numpy()


def test_best_weights_checkpoint_saves_only_on_improvement(tmp_path, tiny_model):
    path = tmp_path / "best.h5"
    checkpoint = callbacks.BestWeightsCheckpoint(str(path))
    checkpoint.set_model(tiny_model)
    checkpoint.on_train_begin()

    checkpoint.on_epoch_end(0, {"val_loss": 1.0})
    first = tiny_model.get_layer("dense_0").kernel.numpy().copy()
    np.testing.assert_allclose(saved_kernel(path), first)

    shift_weights(tiny_model, 1.0)
    checkpoint.on_epoch_end(1, {"val_loss": 1.5})
    checkpoint.on_epoch_end(2, {"val_loss": 1.0})
    checkpoint.on_epoch_end(3, {"loss": 0.1})
    checkpoint.on_epoch_end(4, {"val_loss": float("nan")})
    np.testing.assert_allclose(saved_kernel(path), first)

    checkpoint.on_epoch_end(5, {"val_loss": 0.5})
    np.testing.assert_allclose(saved_kernel(path), first + 1.0)
    assert checkpoint.best == 0.5
    assert sorted(item.name for item in tmp_path.iterdir()) == ["best.h5"]


def test_best_weights_checkpoint_starts_from_the_given_best(tmp_path, tiny_model):
    path = tmp_path / "best.h5"
    checkpoint = callbacks.BestWeightsCheckpoint(str(path), best=0.5)
    checkpoint.set_model(tiny_model)
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"val_loss": 0.7})
    assert not path.exists()
    checkpoint.on_epoch_end(1, {"val_loss": 0.4})
    assert path.exists()


def test_best_weights_checkpoint_resets_on_train_begin(tmp_path, tiny_model):
    checkpoint = callbacks.BestWeightsCheckpoint(str(tmp_path / "best.h5"), monitor="loss")
    checkpoint.set_model(tiny_model)
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"loss": 0.2})
    checkpoint.on_train_begin()
    assert checkpoint.best == math.inf


def test_best_weights_checkpoint_in_fit(tmp_path, tiny_model):
    path = tmp_path / run_folder.BEST_WEIGHTS
    path.parent.mkdir()
    tiny_model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    tiny_model.fit(
        x, y, validation_data=(x, y), epochs=2, batch_size=8, verbose=0,
        callbacks=[callbacks.BestWeightsCheckpoint(str(path))],
    )  # fmt: skip
    assert path.exists()
    assert [item.name for item in path.parent.iterdir()] == [path.name]
    restored = build_mlp(3, 2, hidden_units=(4,))
    restored.load_weights(str(path))
    assert restored.get_weights()[0].shape == (3, 4)


def test_epoch_throughput_adds_to_the_logs(monkeypatch):
    clock = iter([10.0, 12.0, 20.0, 24.0])
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    throughput = callbacks.EpochThroughput(examples_per_epoch=100)
    throughput.on_train_begin()
    logs = {"loss": 0.5}
    throughput.on_epoch_begin(0)
    throughput.on_epoch_end(0, logs)
    assert logs == {"loss": 0.5, "epoch_seconds": 2.0, "examples_per_second": 50.0}
    logs = {}
    throughput.on_epoch_begin(1)
    throughput.on_epoch_end(1, logs)
    assert logs == {"epoch_seconds": 4.0, "examples_per_second": 25.0}
    assert throughput.epoch_seconds == [2.0, 4.0]


def test_epoch_throughput_appears_in_the_fit_history(tiny_model):
    tiny_model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.ones((8, 3), "float32")
    history = tiny_model.fit(
        x, np.zeros(8, "int32"), epochs=2, batch_size=4, verbose=0,
        callbacks=[callbacks.EpochThroughput(examples_per_epoch=8)],
    )  # fmt: skip
    assert len(history.history["epoch_seconds"]) == 2
    assert all(value > 0 for value in history.history["examples_per_second"])


def write_history(folder, rows):
    pd.DataFrame(rows).to_csv(folder / run_folder.HISTORY, index=False)


def test_history_plot_writes_history_png(tmp_path):
    write_history(tmp_path, HISTORY_ROWS)
    callbacks.HistoryPlot(run_folder.RunFolder(tmp_path)).on_epoch_end(2)
    image = tmp_path / "history.png"
    assert image.is_file()  # the first epoch end of a fresh callback draws
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["history.csv", "history.png"]


def test_history_plot_redraws_at_most_every_interval_and_always_at_the_end(tmp_path):
    write_history(tmp_path, HISTORY_ROWS)
    plot = callbacks.HistoryPlot(run_folder.RunFolder(tmp_path), min_interval_seconds=3600)
    plot.on_train_begin()
    plot.on_epoch_end(0)
    assert not (tmp_path / "history.png").exists()
    plot.on_train_end()
    assert (tmp_path / "history.png").is_file()


def test_history_plot_without_a_history_writes_nothing(tmp_path):
    callbacks.HistoryPlot(run_folder.RunFolder(tmp_path)).on_epoch_end(0)
    assert list(tmp_path.iterdir()) == []


def test_standard_callbacks_order_and_options(tmp_path):
    run = run_folder.RunFolder(tmp_path)
    names = [type(callback).__name__ for callback in callbacks.standard_callbacks(run, 100)]
    assert names == [
        "EpochThroughput", "BestWeightsCheckpoint", "HistoryTrim", "EpochLog", "HistoryPlot",
        "EarlyStopping", "BackupAndRestore",
    ]  # fmt: skip
    names = [
        type(callback).__name__
        for callback in callbacks.standard_callbacks(run, 100, early_stopping_patience=0, tensorboard=True)
    ]
    assert "EarlyStopping" not in names
    assert names[-1] == "TensorBoard"
    names = [type(callback).__name__ for callback in callbacks.standard_callbacks(run, 100, epoch_checkpoints=True)]
    assert names[3:5] == ["EpochLog", "EpochCheckpoint"]


def test_history_trim_drops_the_rows_of_epochs_that_run_again_before_the_log_appends(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n1,0.9\n2,0.5\n3,0.4\n")
    trim = callbacks.HistoryTrim(str(path))
    logger = callbacks.EpochLog(str(path))
    for callback in (trim, logger):
        callback.on_train_begin()
    # Resumed from the backup of epoch 2: epoch 3 (index 2) was logged but runs again.
    for callback in (trim, logger):
        callback.on_epoch_begin(2)
    logger.on_epoch_end(2, {"loss": 0.3})
    trim.on_epoch_begin(3)
    logger.on_epoch_end(3, {"loss": 0.2})
    logger.on_train_end()
    rows = [line.split(",")[:2] for line in path.read_text().splitlines()]
    assert rows == [["epoch", "loss"], ["1", "0.9"], ["2", "0.5"], ["3", "0.3"], ["4", "0.2"]]


def test_history_trim_leaves_a_log_without_rerun_epochs_alone(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n1,0.9\n2,0.5\n")
    modified = path.stat().st_mtime_ns
    trim = callbacks.HistoryTrim(str(path))
    trim.on_train_begin()
    trim.on_epoch_begin(2)
    assert path.read_text() == "epoch,loss\n1,0.9\n2,0.5\n" and path.stat().st_mtime_ns == modified


def test_standard_callbacks_resume_from_the_best_logged_loss(tmp_path):
    write_history(tmp_path, HISTORY_ROWS)
    run = run_folder.RunFolder(tmp_path)
    checkpoint = callbacks.standard_callbacks(run, 100)[1]
    assert checkpoint.initial_best == math.inf  # no checkpoint file yet
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / run_folder.BEST_WEIGHTS).write_bytes(b"")
    checkpoint = callbacks.standard_callbacks(run, 100)[1]
    assert checkpoint.initial_best == pytest.approx(0.7)
