"""The evaluator side of sidecar evaluation, in one process on tiny data."""

import os

import numpy as np
import pandas as pd
import pytest

from kerastrain import callbacks, run_folder, tf_data, training
from kerastrain.distribute import evaluator
from kerastrain.backend import keras
from kerastrain.errors import UsageError
from kerastrain.models import build_mlp


@pytest.fixture
def chief_run(tmp_path):
    """A run folder in which a 'chief' trained 3 epochs with per-epoch checkpoints."""
    generator = np.random.default_rng(0)
    inputs = generator.normal(size=(96, 4)).astype("float32")
    labels = (inputs[:, 0] + inputs[:, 1] > 0).astype("int32")
    run = run_folder.RunFolder(tmp_path / "run")
    os.makedirs(run.path)
    keras.utils.set_random_seed(0)
    model = build_mlp(4, 2, hidden_units=(8,))
    training.compile_classifier(model, keras.optimizers.SGD(0.1))
    history = model.fit(
        inputs, labels, validation_data=(inputs, labels), epochs=3, batch_size=16, verbose=0,
        callbacks=[callbacks.EpochCheckpoint(run.file(run_folder.EPOCH_CHECKPOINTS))],
    )  # fmt: skip
    return run, tf_data.make_dataset(inputs, labels, 16), history.history


def test_each_epoch_checkpoint_is_evaluated_once_and_matches_the_chiefs_validation(chief_run):
    run, dataset, chief_history = chief_run
    run.write_json(run_folder.METRICS, {})  # the chief stopped early, after 3 of 10 epochs
    evaluated = evaluator.evaluate_checkpoints(
        build_mlp(4, 2, hidden_units=(8,)), dataset, run, epochs=10, timeout_seconds=30, poll_seconds=0.1
    )
    assert evaluated == 3
    rows = pd.read_csv(run.file(run_folder.EVALUATOR_METRICS))
    assert list(rows["epoch"]) == [1, 2, 3]
    np.testing.assert_allclose(rows["val_loss"], chief_history["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(rows["val_accuracy"], chief_history["val_accuracy"], rtol=1e-6)
    # A restarted evaluator evaluates nothing twice.
    again = evaluator.evaluate_checkpoints(
        build_mlp(4, 2, hidden_units=(8,)), dataset, run, epochs=10, timeout_seconds=30, poll_seconds=0.1
    )
    assert again == 0 and len(pd.read_csv(run.file(run_folder.EVALUATOR_METRICS))) == 3


def test_the_evaluator_stops_after_the_last_epoch_without_waiting_for_the_chief(chief_run):
    run, dataset, _ = chief_run
    evaluated = evaluator.evaluate_checkpoints(
        build_mlp(4, 2, hidden_units=(8,)), dataset, run, epochs=3, timeout_seconds=30, poll_seconds=0.1
    )
    assert evaluated == 3 and not run.finished


def test_the_evaluator_gives_up_when_no_new_checkpoint_comes(chief_run):
    run, dataset, _ = chief_run
    with pytest.raises(UsageError, match=r"saw no new checkpoint in .*checkpoints/epochs for 0.5 s"):
        evaluator.evaluate_checkpoints(
            build_mlp(4, 2, hidden_units=(8,)), dataset, run, epochs=10, timeout_seconds=0.5, poll_seconds=0.1
        )
    assert len(pd.read_csv(run.file(run_folder.EVALUATOR_METRICS))) == 3


def test_a_chief_that_finished_without_epoch_checkpoints_is_named(tmp_path):
    # A chief outside a TF_CONFIG job writes no epoch checkpoints.
    run = run_folder.RunFolder(tmp_path / "run")
    os.makedirs(run.path)
    run.write_json(run_folder.METRICS, {})
    with pytest.raises(UsageError, match=r"finished without epoch checkpoints.*as a task of a TF_CONFIG job"):
        evaluator.evaluate_checkpoints(
            build_mlp(4, 2, hidden_units=(8,)), None, run, epochs=3, timeout_seconds=30, poll_seconds=0.1
        )


def test_a_checkpoint_of_another_model_is_refused(chief_run):
    run, _, _ = chief_run
    other_model = build_mlp(4, 2, hidden_units=(8, 8))
    with pytest.raises(ValueError, match="incompatible tensor"):
        evaluator.evaluate_checkpoints(other_model, None, run, epochs=3, timeout_seconds=1)


def test_waiting_for_a_chief_that_never_comes_ends_with_one_line(tmp_path):
    with pytest.raises(UsageError, match=r"waited 0.2 s for the chief's preprocessor.joblib"):
        evaluator.wait_for_chief(run_folder.RunFolder(tmp_path), "mlp", config=None, timeout_seconds=0.2, poll_seconds=0.05)


def test_labels_the_chief_never_saw_are_refused():
    assert evaluator.encode_like_chief(["ham", "spam", "ham"], ["ham", "spam"]).tolist() == [0, 1, 0]
    with pytest.raises(UsageError, match="'eggs', which the chief's classes.json lacks"):
        evaluator.encode_like_chief(["ham", "eggs"], ["ham", "spam"])
