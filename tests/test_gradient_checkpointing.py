"""Gradient checkpointing (`--gradient-checkpointing`): recomputed activations, the same gradients."""

import json

import numpy as np
import pytest

from conftest import run_script
from kerastrain import accumulation, config as config_lib
from kerastrain.backend import keras, tf
from kerastrain.models import RecomputedBlock, build_mlp, build_textcnn, checkpointing


# Every test starts, and leaves, in float32 (the conftest fixture).
pytestmark = pytest.mark.usefixtures("float32_policy")


@pytest.fixture
def recomputations(monkeypatch):
    """Counts the recomputations traced or run (one per block and backward pass)."""
    count = {"blocks": 0}
    real = checkpointing.frozen_moving_averages

    def counting(layers):
        count["blocks"] += 1
        return real(layers)

    monkeypatch.setattr(checkpointing, "frozen_moving_averages", counting)
    return count


def features_and_labels(examples=32, features=20, classes=3):
    generator = np.random.default_rng(0)
    return generator.normal(size=(examples, features)).astype("float32"), generator.integers(0, classes, examples)


def text_inputs(examples=16):
    generator = np.random.default_rng(1)
    inputs = {
        "tokens": generator.integers(0, 50, size=(examples, 12)).astype("int32"),
        "ngrams": generator.integers(0, 30, size=(examples, 20)).astype("int32"),
    }
    return inputs, generator.integers(0, 2, examples)


def gradients(model, inputs, labels, seed=0):
    """The gradients of the mean loss plus the regularization losses, dense."""
    tf.random.set_seed(seed)
    with tf.GradientTape() as tape:
        probabilities = model(inputs, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, probabilities))
        if model.losses:
            loss += tf.add_n(model.losses)
    return [tf.convert_to_tensor(gradient).numpy() for gradient in tape.gradient(loss, model.trainable_variables)]


def largest_difference(first, second):
    assert len(first) == len(second)
    return max(float(np.max(np.abs(a - b))) for a, b in zip(first, second))


def plain_and_checkpointed(build, **arguments):
    """The same model built twice, without and with checkpointing, with the same weights."""
    plain = build(**arguments)
    checkpointed = build(**arguments, gradient_checkpointing=True)
    checkpointed.set_weights(plain.get_weights())
    return plain, checkpointed


@pytest.mark.parametrize("batch_normalization", [False, True])
def test_mlp_gradients_equal_those_without_checkpointing(recomputations, batch_normalization):
    inputs, labels = features_and_labels()
    plain, checkpointed = plain_and_checkpointed(
        build_mlp, input_dim=20, num_classes=3, hidden_units=(16, 8), batch_normalization=batch_normalization, l2=1e-3
    )
    assert [type(layer) for layer in checkpointed.layers].count(RecomputedBlock) == 2
    expected = gradients(plain, inputs, labels)
    assert largest_difference(gradients(checkpointed, inputs, labels), expected) < 1e-6
    assert recomputations["blocks"] == 2  # the backward pass did recompute both blocks
    assert max(float(np.max(np.abs(gradient))) for gradient in expected) > 1e-3  # not trivially zero


def test_textcnn_gradients_equal_those_without_checkpointing(recomputations):
    inputs, labels = text_inputs()
    plain, checkpointed = plain_and_checkpointed(
        build_textcnn, vocabulary_size=50, sequence_length=12, num_classes=2, embedding_dim=8, filters=4,
        dropout=0.0, ngram_vocabulary_size=30,
    )  # fmt: skip
    assert [type(layer) for layer in checkpointed.layers].count(RecomputedBlock) == 3  # kernel sizes 3, 4, 5
    assert largest_difference(gradients(checkpointed, inputs, labels), gradients(plain, inputs, labels)) < 1e-6
    assert recomputations["blocks"] == 3


def test_dropout_drops_the_same_units_when_the_block_is_recomputed(monkeypatch):
    inputs, labels = features_and_labels()
    keras.utils.set_random_seed(3)
    model = build_mlp(20, 3, hidden_units=(16, 8), dropout=0.5, gradient_checkpointing=True)
    recomputed = gradients(model, inputs, labels, seed=5)
    with monkeypatch.context() as patch:
        patch.setattr(tf, "recompute_grad", lambda function: function)  # the same block, kept in memory
        kept = gradients(model, inputs, labels, seed=5)
    assert largest_difference(recomputed, kept) < 1e-6
    # Another step draws other masks.
    assert largest_difference(recomputed, gradients(model, inputs, labels, seed=6)) > 1e-3


def test_dropout_in_a_block_drops_at_its_rate_and_only_in_training():
    block = RecomputedBlock([keras.layers.Activation("linear")], dropout=0.25)
    ones = tf.ones([200, 50])
    dropped = block(ones, training=True).numpy()
    assert 0.2 < float(np.mean(dropped == 0)) < 0.3
    np.testing.assert_allclose(dropped[dropped != 0], 1 / 0.75, rtol=1e-6)
    np.testing.assert_array_equal(block(ones, training=False).numpy(), ones.numpy())


def test_a_block_refuses_a_dropout_rate_out_of_range():
    with pytest.raises(ValueError, match="dropout=1.0"):
        RecomputedBlock([keras.layers.Dense(2)], dropout=1.0)


def fit_weights(model, inputs, labels, jit_compile, accumulate_steps=1):
    model = accumulation.with_gradient_accumulation(model, accumulate_steps)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", jit_compile=jit_compile)
    model.fit(inputs, labels, batch_size=16 * accumulate_steps, epochs=2, shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.slow
@pytest.mark.parametrize(
    "policy, jit_compile, accumulate_steps",
    [("float32", False, 1), ("float32", True, 1), ("float32", True, 2), ("mixed_bfloat16", True, 1)],
)
def test_training_with_checkpointing_moves_the_weights_as_without_it(recomputations, policy, jit_compile, accumulate_steps):
    # Batch normalization included: its moving averages must be updated once per step, not twice.
    keras.mixed_precision.set_global_policy(policy)
    inputs, labels = features_and_labels(examples=64)
    plain, checkpointed = plain_and_checkpointed(
        build_mlp, input_dim=20, num_classes=3, hidden_units=(16, 8), batch_normalization=True
    )
    initial = plain.get_weights()
    expected = fit_weights(plain, inputs, labels, jit_compile, accumulate_steps)
    assert largest_difference(fit_weights(checkpointed, inputs, labels, jit_compile, accumulate_steps), expected) < 1e-5
    assert recomputations["blocks"] >= 2
    assert largest_difference(expected, initial) > 1e-3


@pytest.mark.slow
def test_a_saved_checkpointed_model_reloads_and_predicts_the_same(tmp_path):
    inputs, labels = features_and_labels()
    model = build_mlp(20, 3, hidden_units=(16, 8), dropout=0.3, batch_normalization=True, gradient_checkpointing=True)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(inputs, labels, epochs=2, verbose=0)
    model.save(tmp_path / "mlp.keras")
    reloaded = keras.models.load_model(tmp_path / "mlp.keras")
    assert [type(layer) for layer in reloaded.layers].count(RecomputedBlock) == 2
    assert reloaded.get_layer("hidden_0").dropout == 0.3
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), atol=1e-6)

    text, text_labels = text_inputs()
    textcnn = build_textcnn(50, 12, 2, embedding_dim=8, filters=4, ngram_vocabulary_size=30, gradient_checkpointing=True)
    textcnn.compile("adam", "sparse_categorical_crossentropy")
    textcnn.fit(text, text_labels, epochs=1, verbose=0)
    textcnn.save(tmp_path / "textcnn.keras")
    reloaded = keras.models.load_model(tmp_path / "textcnn.keras")
    np.testing.assert_allclose(reloaded.predict(text, verbose=0), textcnn.predict(text, verbose=0), atol=1e-6)


def test_the_setting_is_a_flag_of_both_recipes():
    for config_class in (config_lib.TextCNNConfig, config_lib.MLPConfig):
        (item,) = [item for item in config_lib.dataclasses.fields(config_class) if item.name == "gradient_checkpointing"]
        assert item.default is False and item.metadata["group"] == "precision and speed"


# Two logical CPUs: in a subprocess, since devices must be configured before TensorFlow starts.
MIRRORED_SCRIPT = """
import json
import numpy as np
from kerastrain.distribute import strategies
strategy = strategies.build_strategy("mirrored", cpu_devices=2)
from kerastrain.backend import keras, tf
from kerastrain.models import build_mlp

generator = np.random.default_rng(0)
features = generator.normal(size=(64, 6)).astype("float32")
labels = generator.integers(0, 3, 64)

def train(checkpointing, dropout):
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model = build_mlp(6, 3, hidden_units=(8, 8), dropout=dropout, gradient_checkpointing=checkpointing)
        model.compile(keras.optimizers.SGD(0.2), "sparse_categorical_crossentropy")
    model.fit(features, labels, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return model.get_weights()

plain, checkpointed = train(False, 0.0), train(True, 0.0)
train(True, 0.5)  # dropout draws a seed per replica
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "difference": max(float(np.abs(a - b).max()) for a, b in zip(plain, checkpointed)),
}))
"""


@pytest.mark.slow
def test_checkpointing_under_a_mirrored_strategy_trains_as_without_it():
    outcome = json.loads(run_script(MIRRORED_SCRIPT))
    assert outcome["replicas"] == 2 and outcome["difference"] < 1e-5


@pytest.mark.slow
def test_a_recipe_trains_end_to_end_with_checkpointing_as_without_it(tmp_path, digits_csv, capsys):
    from kerastrain import pipeline
    from kerastrain.recipes import mlp

    # Without dropout (its masks come from another generator in a block), with batch
    # normalization, the plain one under XLA: the two runs must train the same model.
    runs = {}
    for checkpointing in (False, True):
        config = config_lib.resolve(config_lib.MLPConfig, overrides={
            "data": str(digits_csv), "epochs": 2, "hidden_units": (32, 16), "dropout": 0.0,
            "batch_normalization": True, "gradient_checkpointing": checkpointing, "jit_compile": True, "verbose": 0,
            "output_dir": str(tmp_path / f"checkpointing_{checkpointing}"),
        })  # fmt: skip
        runs[checkpointing] = pipeline.train(mlp.RECIPE, config)
    plain, checkpointed = runs[False], runs[True]
    assert checkpointed.config["gradient_checkpointing"] is True
    # XLA would merge the recomputation away: the checkpointed run trains without it, and says so.
    environments = {key: json.loads((tmp_path / f"checkpointing_{key}" / "config.json").read_text())["environment"] for key in runs}
    assert environments[False]["jit_compile"] is True and environments[True]["jit_compile"] is False
    assert capsys.readouterr().err.count("--gradient-checkpointing trains without XLA") == 1
    assert checkpointed.metrics["test"]["loss"] == pytest.approx(plain.metrics["test"]["loss"], abs=1e-4)
    assert checkpointed.metrics["test"]["accuracy"] == pytest.approx(plain.metrics["test"]["accuracy"], abs=1e-9)
    model = keras.models.load_model(tmp_path / "checkpointing_True" / "model.keras")
    assert [layer.name for layer in model.layers if isinstance(layer, RecomputedBlock)] == ["hidden_0", "hidden_1"]
