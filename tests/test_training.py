"""Training helpers that need no run folder."""

import numpy as np

from kerastrain import training


def test_best_epoch_count_is_the_epoch_of_the_lowest_validation_loss(tmp_path):
    from kerastrain import run_folder

    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n1,1.0,1.1\n2,0.6,0.6\n3,0.4,0.8\n4,0.3,0.9\n")
    assert training.best_epoch_count(run_folder.RunFolder(tmp_path)) == 2


# training.reinitialize: the refit's fresh weights in the first model, whose training step is kept.


def compiled_mlp(optimizer, seed, hidden_units=(4,)):
    from kerastrain.backend import keras
    from kerastrain.models import build_mlp

    keras.utils.set_random_seed(seed)
    model = build_mlp(3, 2, hidden_units=hidden_units, batch_normalization=True)
    training.compile_classifier(model, keras.optimizers.get(optimizer))
    return model


def toy_data(seed=0):
    x = np.random.default_rng(seed).normal(size=(64, 3)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int32")


def test_a_reinitialized_model_trains_exactly_as_a_new_one_with_its_first_training_step(float32_policy):
    x, y = toy_data()
    model = compiled_mlp("adam", seed=1)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    train_function = model.train_function
    fresh, twin = compiled_mlp("adam", seed=2), compiled_mlp("adam", seed=2)
    assert training.reinitialize(model, fresh)
    for weight, fresh_weight in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(weight, fresh_weight)  # the batch norm statistics included
    assert int(model.optimizer.iterations.numpy()) == 0
    assert all(not np.any(slot.numpy()) for slot in model.optimizer.variables[1:])  # Adam's moments
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    twin.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    assert model.train_function is train_function
    for weight, twin_weight in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(weight, twin_weight, rtol=1e-5, atol=1e-6)


def test_reinitialize_restores_each_optimizer_state_as_a_new_optimizer_starts(float32_policy):
    x, y = toy_data()
    model = compiled_mlp("adagrad", seed=1)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    initial = model.optimizer.get_config()["initial_accumulator_value"]
    assert training.reinitialize(model, compiled_mlp("adagrad", seed=2))
    accumulators = [slot.numpy() for slot in model.optimizer.variables[1:]]
    assert accumulators and all(np.allclose(values, initial) for values in accumulators)


def test_reinitialize_leaves_a_different_model_or_optimizer_untouched(float32_policy):
    x, y = toy_data()
    model = compiled_mlp("adam", seed=1)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    before = [weight.copy() for weight in model.get_weights()]
    steps = int(model.optimizer.iterations.numpy())
    assert not training.reinitialize(model, compiled_mlp("adam", seed=2, hidden_units=(5,)))
    assert not training.reinitialize(model, compiled_mlp("rmsprop", seed=2))
    for weight, kept in zip(model.get_weights(), before):
        np.testing.assert_array_equal(weight, kept)
    assert int(model.optimizer.iterations.numpy()) == steps > 0


# training.refit's backup: an interrupted refit resumes at its last finished epoch.


def toy_training_inputs():
    from kerastrain.backend import tf
    from kerastrain.distribute import inputs as inputs_lib

    x, y = toy_data()
    return inputs_lib.make_training_inputs(tf.distribute.get_strategy(), train=(x, y), validation=(x, y), batch_size=16)


def test_an_interrupted_refit_resumes_at_its_last_finished_epoch(float32_policy, tmp_path, monkeypatch):
    import pytest

    from kerastrain import callbacks as callbacks_lib
    from kerastrain.config import MLPConfig

    inputs, config, backup = toy_training_inputs(), MLPConfig(verbose=0), tmp_path / "backup" / "refit"
    save = callbacks_lib.BackupBeforeLastEpoch.on_epoch_end

    def interrupted_after_the_second_epoch(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks_lib.BackupBeforeLastEpoch, "on_epoch_end", interrupted_after_the_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        training.refit(compiled_mlp("adam", seed=1), inputs, config, 4, backup_dir=str(backup))
    assert any(backup.iterdir())
    monkeypatch.undo()
    rerun = compiled_mlp("adam", seed=1)
    training.refit(rerun, inputs, config, 4, backup_dir=str(backup))
    assert rerun.history.epoch == [2, 3]  # the epochs after the backup, and no more
    assert int(rerun.optimizer.iterations.numpy()) == 4 * inputs.steps_per_epoch
    assert not backup.exists()  # deleted once the refit finished


def test_the_refit_backs_up_after_every_epoch_but_the_last(float32_policy, tmp_path, monkeypatch):
    from kerastrain.backend import keras
    from kerastrain.config import MLPConfig

    saved_after = []
    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "on_epoch_end", lambda self, epoch, logs=None: saved_after.append(epoch))
    training.refit(compiled_mlp("adam", seed=1), toy_training_inputs(), MLPConfig(verbose=0), 3, backup_dir=str(tmp_path))
    assert saved_after == [0, 1]
    saved_after.clear()
    training.refit(compiled_mlp("adam", seed=1), toy_training_inputs(), MLPConfig(verbose=0), 1, backup_dir=str(tmp_path))
    assert saved_after == []
