"""Gradient accumulation (`--accumulate-steps`): one update from several micro-batches."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import SERVERS, error_lines, run_module, run_script
from kerastrain import accumulation, config as config_lib, tf_data
from kerastrain.distribute.inputs import make_training_inputs
from kerastrain.backend import keras, tf
from kerastrain.models import build_mlp

# Trains a small dense model and a small embedding model twice each under a
# strategy: accumulating 4 micro-batches per update, and plainly on batches 4
# times larger; prints the largest weight difference and both update counts. In a subprocess: logical CPU devices must
# be configured before TensorFlow starts.
EQUIVALENCE_SCRIPT = """
import json, sys
import numpy as np
import pandas as pd
from kerastrain.distribute import strategies
strategy = strategies.build_strategy(sys.argv[1], cpu_devices=int(sys.argv[2]))
from kerastrain import accumulation
from kerastrain.backend import keras, tf
from kerastrain.models import build_mlp

generator = np.random.default_rng(0)
features = generator.normal(size=(90, 6)).astype("float32")
labels = generator.integers(0, 3, 90)

tokens = generator.integers(0, 30, size=(90, 5)).astype("int32")

def dense_model():
    return build_mlp(6, 3, hidden_units=(8,))

def embedding_model():  # sparse (IndexedSlices) gradients
    inputs = keras.Input(shape=(5,), dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(30, 4)(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))

def train(build, inputs, accumulate_steps):
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model = accumulation.with_gradient_accumulation(build(), accumulate_steps)
        model.compile(keras.optimizers.SGD(0.2), "sparse_categorical_crossentropy", steps_per_execution=2)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(32)
    model.fit(dataset, epochs=2, verbose=0)
    return model.get_weights(), int(model.optimizer.iterations.numpy())

outcome = {"replicas": strategy.num_replicas_in_sync}
for name, build, inputs in [("dense", dense_model, features), ("embedding", embedding_model, tokens)]:
    accumulated, accumulated_updates = train(build, inputs, 4)
    plain, plain_updates = train(build, inputs, 1)
    outcome[name] = {
        "difference": max(float(np.abs(a - b).max()) for a, b in zip(accumulated, plain)),
        "moved": max(float(np.abs(a).max()) for a in accumulated),
        "updates": [accumulated_updates, plain_updates],
    }
print(json.dumps(outcome))
"""


def random_data(examples=58, features=6, classes=3):
    generator = np.random.default_rng(0)
    return generator.normal(size=(examples, features)).astype("float32"), generator.integers(0, classes, examples)


def dense_model():
    return build_mlp(6, 3, hidden_units=(8,))


def embedding_model():
    """A tiny bag of embeddings: its embedding gradients are sparse (IndexedSlices)."""
    tokens = keras.Input(shape=(5,), dtype="int32")
    vectors = keras.layers.Embedding(30, 4)(tokens)
    pooled = keras.layers.GlobalAveragePooling1D()(vectors)
    return keras.Model(tokens, keras.layers.Dense(3, activation="softmax")(pooled))


def train(build, accumulate_steps, inputs, labels, batch_size, optimizer, strategy, jit_compile=False, steps_per_execution=1):
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model = accumulation.with_gradient_accumulation(build(), accumulate_steps)
        model.compile(
            optimizer(), "sparse_categorical_crossentropy",
            steps_per_execution=steps_per_execution, jit_compile=jit_compile,
        )  # fmt: skip
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(batch_size)
    model.fit(dataset, epochs=2, verbose=0)
    return model


def sgd():
    return keras.optimizers.SGD(0.2)


def sgd_with_a_schedule_and_clipping():
    # Halves the rate every 2 updates, and clips hard: both must count and clip
    # whole updates, not micro-batches, to match the large batch.
    schedule = keras.optimizers.schedules.ExponentialDecay(0.2, decay_steps=2, decay_rate=0.5)
    return keras.optimizers.SGD(schedule, momentum=0.5, clipnorm=0.05)


def largest_difference(first, second):
    return max(float(np.abs(a - b).max()) for a, b in zip(first.get_weights(), second.get_weights()))


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy_name, optimizer, jit_compile, steps_per_execution",
    [
        ("default", sgd, False, 1),
        ("one_device", sgd, True, 3),
        ("default", sgd_with_a_schedule_and_clipping, False, 2),
    ],
    ids=["sgd", "one_device_xla_steps_per_execution", "schedule_and_clipnorm"],
)
def test_accumulated_micro_batches_update_like_one_large_batch(strategy_name, optimizer, jit_compile, steps_per_execution):
    from kerastrain.distribute import strategies

    strategy = strategies.build_strategy(strategy_name)
    inputs, labels = random_data()
    # 58 examples in batches of 16: the last step of each epoch has 10, split 3, 3, 3, 1.
    options = dict(strategy=strategy, jit_compile=jit_compile, steps_per_execution=steps_per_execution)
    accumulated = train(dense_model, 4, inputs, labels, 16, optimizer, **options)
    large_batch = train(dense_model, 1, inputs, labels, 16, optimizer, **options)
    assert isinstance(accumulated, accumulation.GradientAccumulationModel)
    assert not isinstance(large_batch, accumulation.GradientAccumulationModel)
    assert largest_difference(accumulated, large_batch) < 1e-6
    # One update per step of 4 micro-batches: 4 steps an epoch, 2 epochs.
    assert int(accumulated.optimizer.iterations.numpy()) == int(large_batch.optimizer.iterations.numpy()) == 8


@pytest.mark.slow
def test_the_comparison_tells_accumulation_from_small_steps():
    strategy = tf.distribute.get_strategy()
    inputs, labels = random_data()
    accumulated = train(dense_model, 4, inputs, labels, 16, sgd, strategy)
    small_steps = train(dense_model, 1, inputs, labels, 4, sgd, strategy)
    assert largest_difference(accumulated, small_steps) > 1e-3


@pytest.mark.slow
def test_sparse_embedding_gradients_accumulate_like_one_large_batch():
    strategy = tf.distribute.get_strategy()
    generator = np.random.default_rng(0)
    tokens = generator.integers(0, 30, size=(40, 5)).astype("int32")
    labels = generator.integers(0, 3, 40)
    accumulated = train(embedding_model, 3, tokens, labels, 12, sgd, strategy)
    large_batch = train(embedding_model, 1, tokens, labels, 12, sgd, strategy)
    assert largest_difference(accumulated, large_batch) < 1e-6


@pytest.mark.slow
def test_mirrored_accumulation_on_two_logical_cpus_equals_a_large_batch():
    outcome = json.loads(run_script(EQUIVALENCE_SCRIPT, "mirrored", "2"))
    # Each replica accumulates its half of every micro-batch; the optimizer sums
    # the replicas' accumulated gradients once.
    assert outcome["replicas"] == 2
    for model in ("dense", "embedding"):
        assert outcome[model]["moved"] > 0 and outcome[model]["difference"] < 1e-6, model
        # 90 examples in steps of 32: 3 updates an epoch, 2 epochs, with or without accumulation.
        assert outcome[model]["updates"] == [6, 6], model


class StopAfterEpoch(keras.callbacks.Callback):
    """Interrupts `fit` at the end of epoch `epoch`, as a killed process would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


@pytest.mark.slow
def test_an_interrupted_accumulating_run_resumes_to_the_same_weights(tmp_path):
    inputs, labels = random_data()
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(16)

    def fit(callbacks, seed=1):
        keras.utils.set_random_seed(seed)
        model = accumulation.with_gradient_accumulation(dense_model(), 4)
        model.compile(sgd_with_a_schedule_and_clipping(), "sparse_categorical_crossentropy")
        model.fit(dataset, epochs=3, verbose=0, callbacks=callbacks)
        return model

    uninterrupted = fit([])
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        fit([backup, StopAfterEpoch(1)])
    # Other initial weights: only the backup can make the result equal.
    resumed = fit([keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))], seed=2)
    assert resumed.history.epoch == [2]
    # The backup holds the weights and the optimizer (its update count drives the
    # schedule); no gradients are pending between steps, so nothing else is needed.
    assert int(resumed.optimizer.iterations.numpy()) == int(uninterrupted.optimizer.iterations.numpy()) == 12
    assert largest_difference(resumed, uninterrupted) < 1e-6


@pytest.mark.slow
def test_mixed_float16_unscales_each_micro_batch_and_applies_once():
    inputs, labels = random_data()
    strategy = tf.distribute.get_strategy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        accumulated = train(dense_model, 4, inputs, labels, 16, sgd, strategy)
        large_batch = train(dense_model, 1, inputs, labels, 16, sgd, strategy)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(accumulated.optimizer, keras.mixed_precision.LossScaleOptimizer)
    assert float(accumulated.optimizer.loss_scale) == float(large_batch.optimizer.loss_scale)
    assert int(accumulated.optimizer.iterations.numpy()) == 8
    # float16 activations: equal up to float16 rounding, not exactly.
    assert largest_difference(accumulated, large_batch) < 1e-3


def test_one_accumulate_step_is_the_plain_path():
    model = dense_model()
    assert accumulation.with_gradient_accumulation(model, 1) is model
    assert accumulation.plain_model(model) is model
    inputs, labels = random_data()
    strategy = tf.distribute.get_strategy()
    plain = make_training_inputs(strategy, (inputs, labels), (inputs, labels), 16)
    once = make_training_inputs(strategy, (inputs, labels), (inputs, labels), 16, accumulate_steps=1)
    assert once.steps_per_epoch == plain.steps_per_epoch == 4
    assert [len(batch[1]) for batch in once.train.take(4)] == [len(batch[1]) for batch in plain.train.take(4)] == [16] * 4


def test_training_batches_hold_the_micro_batches_and_validation_batches_do_not():
    inputs, labels = random_data()
    strategy = tf.distribute.get_strategy()
    inputs = make_training_inputs(strategy, (inputs, labels), (inputs, labels), 8, accumulate_steps=3)
    # 58 examples: an epoch is ceil(58 / 24) = 3 steps of 24, the data repeating.
    assert inputs.steps_per_epoch == 3 and inputs.examples_per_epoch == 72
    assert [len(batch[1]) for batch in inputs.train.take(3)] == [24, 24, 24]
    assert {len(batch[1]) for batch in inputs.validation} == {8, 2}


def test_plain_model_shares_the_weights_and_saves_as_a_functional_model(tmp_path):
    accumulating = accumulation.with_gradient_accumulation(dense_model(), 2)
    plain = accumulation.plain_model(accumulating)
    assert type(plain) is not accumulation.GradientAccumulationModel
    assert plain.weights[0] is accumulating.weights[0]
    plain.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    inputs, _ = random_data(examples=4)
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), accumulating.predict(inputs, verbose=0), atol=1e-6)


def test_accumulate_steps_below_one_is_refused_by_the_model():
    model = dense_model()
    with pytest.raises(ValueError, match="accumulate_steps >= 1"):
        accumulation.GradientAccumulationModel(model.inputs, model.outputs, accumulate_steps=0)


@pytest.mark.slow
def test_mlp_recipe_with_accumulate_steps_end_to_end(tmp_path):
    run_dir = tmp_path / "accumulated"
    result = run_module(
        "kerastrain.recipes.mlp", "--accumulate-steps", "4", "--batch-size", "16", "--hidden-units", "16",
        "--epochs", "2", "--verbose", "2", "--output-dir", run_dir,
        # XLA works (see the one_device test above) but compiles for a while on a busy CPU.
        "--no-jit-compile",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["test"]["accuracy"] > 0.1  # ten classes
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["config"]["accumulate_steps"] == 4
    # The digits' 1257 training examples make ceil(1257 / (4 * 16)) = 20 updates an epoch.
    assert "20/20 - " in result.stdout
    from kerastrain.export.predict import Predictor

    predictor = Predictor.load(run_dir)
    assert not isinstance(predictor.model, accumulation.GradientAccumulationModel)
    assert len(predictor.predict(np.zeros((3, 64), np.float32))) == 3


@pytest.mark.slow
@SERVERS
def test_parameter_server_workers_each_apply_their_accumulated_steps(tmp_path):
    run_dir = tmp_path / "parameter_server"
    result = run_module(
        "kerastrain.recipes.mlp", "--strategy", "parameter_server", "--local-cluster", "workers=2,ps=1",
        "--accumulate-steps", "2", "--batch-size", "32", "--hidden-units", "16", "--epochs", "1",
        "--output-dir", run_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # An epoch is ceil(1257 / (2 * 32)) = 20 updates, whichever worker runs each.
    assert "20/20 - " in result.stdout
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 1
    workers = pd.read_csv(run_dir / "workers.csv")  # each worker's steps, of 2 x 32 examples each
    assert workers["steps"].sum() == 20 and (workers["examples"] == workers["steps"] * 64).all()


MULTI_WORKER_SCRIPT = """
from kerastrain.backend import tf
from kerastrain.distribute.inputs import make_training_inputs
from kerastrain.errors import UsageError
import numpy as np
import pandas as pd
strategy = tf.distribute.MultiWorkerMirroredStrategy()  # one local worker without TF_CONFIG
data = (np.zeros((50, 3), np.float32), np.zeros(50, np.int64))
steps = len(list(make_training_inputs(strategy, data, data, 16, accumulate_steps=3).train))
try:
    make_training_inputs(strategy, data, data, 16, accumulate_steps=4)
except UsageError as error:
    print(steps, error)
"""


@pytest.mark.slow
def test_multi_worker_steps_larger_than_the_data_are_refused():
    # 50 examples: one whole step of 3 x 16 = 48 (the partial step left out), none of 4 x 16 = 64.
    assert run_script(MULTI_WORKER_SCRIPT, timeout=120) == (
        "1 --batch-size 16 x --accumulate-steps 4 is more than the 50 training examples, and "
        "multi_worker_mirrored leaves out a partial step, so no step would run. "
        "Lower --batch-size or --accumulate-steps."
    )


def test_accumulate_steps_zero_is_a_one_line_error():
    result = run_module("kerastrain.recipes.mlp", "--accumulate-steps", "0", timeout=60)
    assert result.returncode == 2
    assert error_lines(result) == ["error: Expected --accumulate-steps >= 1. Received: accumulate_steps=0"]


def test_accumulate_steps_in_a_preset_is_checked_too(tmp_path):
    preset = tmp_path / "preset.toml"
    preset.write_text("accumulate_steps = 0\n")
    with pytest.raises(config_lib.UsageError, match="--accumulate-steps >= 1"):
        config_lib.resolve(config_lib.TextCNNConfig, preset)
