"""Training helpers that need no run folder."""

import numpy as np

from kerastrain import training


def test_compile_only_training_step_keeps_the_xla_training_function(tiny_model):
    tiny_model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=True)
    training.compile_only_training_step(tiny_model)
    train_function = tiny_model.train_function
    assert train_function is not None
    assert tiny_model.jit_compile is False
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    tiny_model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=8, verbose=0)
    assert tiny_model.train_function is train_function


def test_best_epoch_count_is_the_epoch_of_the_lowest_validation_loss(tmp_path):
    from kerastrain import run_folder

    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n1,1.0,1.1\n2,0.6,0.6\n3,0.4,0.8\n4,0.3,0.9\n")
    assert training.best_epoch_count(run_folder.RunFolder(tmp_path)) == 2
