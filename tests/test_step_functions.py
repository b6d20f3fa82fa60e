"""`step_functions`: `fit` and `evaluate` trace the model's step once, and train exactly as tf-keras's functions do."""

import json

import numpy as np
import pytest

from conftest import run_script
from kerastrain import accumulation, step_functions, training
from kerastrain.backend import keras
from kerastrain.models import build_mlp


def toy_data(examples=64, features=3, seed=0):
    x = np.random.default_rng(seed).normal(size=(examples, features)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int32")


def counted_steps(model):
    """Counts the Python calls of `model.train_step` and `model.test_step`, which only tracing makes."""
    calls = {"train": 0, "test": 0}
    train_step, test_step = model.train_step, model.test_step

    def counted_train_step(data):
        calls["train"] += 1
        return train_step(data)

    def counted_test_step(data):
        calls["test"] += 1
        return test_step(data)

    model.train_step, model.test_step = counted_train_step, counted_test_step
    return calls


def compiled(seed, steps_per_execution, jit_compile=False, once=True, accumulate_steps=1):
    keras.utils.set_random_seed(seed)
    model = accumulation.with_gradient_accumulation(
        build_mlp(3, 2, hidden_units=(8,), batch_normalization=True), accumulate_steps
    )
    model.compile(
        keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"],
        steps_per_execution=steps_per_execution, jit_compile=jit_compile,
    )  # fmt: skip
    return step_functions.trace_steps_once(model) if once else model


class BatchLogs(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append((batch, {name: float(value) for name, value in logs.items()}))


def test_fit_and_evaluate_trace_the_training_and_test_steps_once(float32_policy):
    x, y = toy_data()
    model = compiled(seed=0, steps_per_execution=4)
    calls = counted_steps(model)
    model.fit(x, y, validation_data=(x, y), epochs=2, batch_size=8, verbose=0)
    model.evaluate(x, y, batch_size=8, verbose=0)
    traces = model.train_function.experimental_get_tracing_count()
    assert traces >= 1 and calls["train"] == traces
    assert calls["test"] == model.test_function.experimental_get_tracing_count()


def test_tf_keras_own_functions_trace_the_training_step_twice(float32_policy):
    # What the replacement saves: AutoGraph stages the loop body once more to learn the logs' type.
    x, y = toy_data()
    model = compiled(seed=0, steps_per_execution=4, once=False)
    calls = counted_steps(model)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert calls["train"] == 2 * model.train_function.experimental_get_tracing_count()


@pytest.mark.parametrize(
    "steps_per_execution, jit_compile, accumulate_steps", [(3, False, 1), (1, False, 1), (3, True, 1), (3, False, 2)]
)
def test_fit_trains_and_logs_exactly_as_with_tf_keras_functions(float32_policy, steps_per_execution, jit_compile, accumulate_steps):
    # 8 batches in calls of 3 steps: the last call of each epoch runs 2.
    x, y = toy_data()
    runs = {}
    for once in (True, False):
        model = compiled(1, steps_per_execution, jit_compile, once, accumulate_steps)
        batch_logs = BatchLogs()
        history = model.fit(
            x, y, validation_data=(x, y), epochs=2, batch_size=8, shuffle=False, callbacks=[batch_logs], verbose=0
        )
        runs[once] = (model.get_weights(), history.history, batch_logs.logs, int(model.optimizer.iterations.numpy()))
    weights, history, logs, updates = runs[True]
    tf_keras_weights, tf_keras_history, tf_keras_logs, tf_keras_updates = runs[False]
    assert updates == tf_keras_updates == 16
    for weight, tf_keras_weight in zip(weights, tf_keras_weights):
        np.testing.assert_allclose(weight, tf_keras_weight, rtol=1e-6, atol=1e-7)
    assert history.keys() == tf_keras_history.keys()
    for name in history:
        np.testing.assert_allclose(history[name], tf_keras_history[name], rtol=1e-6)
    assert [batch for batch, _ in logs] == [batch for batch, _ in tf_keras_logs]
    for (_, batch_log), (_, tf_keras_batch_log) in zip(logs, tf_keras_logs):
        assert batch_log == pytest.approx(tf_keras_batch_log, rel=1e-6)


def xla_compiled_functions(function):
    """How many functions in the traced graph of the `tf.function` `function` XLA must compile."""
    count = 0
    for concrete in function._list_all_concrete_functions():
        library = concrete.graph.as_graph_def().library
        count += sum(definition.attr["_XlaMustCompile"].b for definition in library.function)
    return count


def test_compile_only_training_step_compiles_the_training_step_with_xla_and_nothing_else(float32_policy):
    x, y = toy_data()
    model = build_mlp(3, 2, hidden_units=(4,))
    training.compile_classifier(model, keras.optimizers.SGD(), steps_per_execution=2, jit_compile=True)
    training.compile_only_training_step(model)
    train_function = model.train_function
    assert model.jit_compile is False
    model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=8, verbose=0)
    assert model.train_function is train_function
    assert xla_compiled_functions(model.train_function) == 1
    assert xla_compiled_functions(model.test_function) == 0


def test_without_jit_compile_no_step_is_compiled_with_xla(float32_policy):
    x, y = toy_data()
    model = build_mlp(3, 2, hidden_units=(4,))
    training.compile_classifier(model, keras.optimizers.SGD(), steps_per_execution=2, jit_compile=False)
    model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=8, verbose=0)
    assert xla_compiled_functions(model.train_function) == 0


def test_a_custom_training_step_keeps_tf_keras_functions_and_xla_for_all(float32_policy):
    class CustomStep(keras.Model):
        def train_step(self, data):
            return super().train_step(data)

    inputs = keras.Input(shape=(3,))
    model = CustomStep(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    training.compile_classifier(model, keras.optimizers.SGD(), steps_per_execution=2, jit_compile=True)
    training.compile_only_training_step(model)
    assert not step_functions.decides_xla_when_built(model.train_function)
    assert model.jit_compile is True  # switching it off would take XLA from the training step too


# Logical CPU devices must be configured before TensorFlow starts: in a subprocess.
MIRRORED_SCRIPT = """
import json
import numpy as np
from kerastrain.distribute import strategies
strategy = strategies.build_strategy("mirrored", cpu_devices=2)
from kerastrain import step_functions
from kerastrain.backend import keras
from kerastrain.models import build_mlp

x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
y = (x[:, 0] + x[:, 1] > 0).astype("int32")
outcome = {"replicas": strategy.num_replicas_in_sync}
for once in (True, False):
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model = build_mlp(3, 2, hidden_units=(8,))
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"], steps_per_execution=3)
    if once:
        step_functions.trace_steps_once(model)
    history = model.fit(x, y, validation_data=(x, y), epochs=2, batch_size=16, shuffle=False, verbose=0)
    outcome[str(once)] = {"weights": [weight.tolist() for weight in model.get_weights()], "history": history.history}
print(json.dumps(outcome))
"""


@pytest.mark.slow
def test_under_a_mirrored_strategy_fit_trains_as_with_tf_keras_functions():
    outcome = json.loads(run_script(MIRRORED_SCRIPT))
    assert outcome["replicas"] == 2
    once, tf_keras = outcome["True"], outcome["False"]
    for weight, tf_keras_weight in zip(once["weights"], tf_keras["weights"]):
        np.testing.assert_allclose(weight, tf_keras_weight, rtol=1e-6, atol=1e-7)
    for name in tf_keras["history"]:
        np.testing.assert_allclose(once["history"][name], tf_keras["history"][name], rtol=1e-6)
