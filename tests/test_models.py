"""The model builders, build_textcnn and build_mlp, on tiny inputs."""

import numpy as np
import pytest

from kerastrain.backend import keras, tf
from kerastrain.models import build_mlp, build_textcnn


@pytest.fixture
def mixed_bfloat16_policy(request):
    request.addfinalizer(lambda: keras.mixed_precision.set_global_policy("float32"))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")


def layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


# build_textcnn.


def test_textcnn_output_shape(float32_policy):
    model = build_textcnn(vocabulary_size=30, sequence_length=8, num_classes=3, embedding_dim=4, filters=2)
    tokens = np.random.default_rng(0).integers(0, 30, size=(5, 8)).astype("int32")
    probabilities = model(tokens, training=False).numpy()
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert [tensor.name.split(":")[0] for tensor in model.inputs] == ["tokens"]


def test_textcnn_has_one_convolution_per_kernel_size(float32_policy):
    model = build_textcnn(30, 8, 2, embedding_dim=4, filters=3, kernel_sizes=(2, 5))
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert sorted(layer.kernel_size[0] for layer in convolutions) == [2, 5]
    assert all(layer.filters == 3 for layer in convolutions)


def test_textcnn_single_kernel_size(float32_policy):
    model = build_textcnn(30, 4, 2, embedding_dim=4, filters=2, kernel_sizes=(3,))
    assert model(np.ones((1, 4), "int32")).shape == (1, 2)


@pytest.mark.parametrize(
    "build, hidden_layer, inputs",
    [
        (lambda: build_textcnn(30, 8, 2, embedding_dim=4, filters=2), "conv_3", np.ones((2, 8), "int32")),
        (lambda: build_mlp(6, 3, hidden_units=(4,)), "dense_0", np.ones((2, 6), "float32")),
    ],
    ids=["textcnn", "mlp"],
)
def test_output_is_float32_under_mixed_bfloat16(mixed_bfloat16_policy, build, hidden_layer, inputs):
    model = build()
    assert model.get_layer(hidden_layer).compute_dtype == "bfloat16"
    assert model.output.dtype == tf.float32
    assert model(inputs).dtype == tf.float32


def test_textcnn_ngram_branch_adds_an_input_named_ngrams(float32_policy):
    plain = build_textcnn(30, 8, 2, embedding_dim=4, filters=2)
    model = build_textcnn(
        30, 8, 2, embedding_dim=4, filters=2, ngram_vocabulary_size=50, ngram_sequence_length=12,
        ngram_embedding_dim=4,
    )
    assert model.input_names == ["tokens", "ngrams"]
    # Trainable n-gram embeddings and their classifier weights, plus 50 frozen n-gram weights.
    assert model.count_params() == plain.count_params() + 50 * 4 + 4 * 2 + 50
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == 50
    rng = np.random.default_rng(0)
    inputs = {
        "tokens": rng.integers(0, 30, size=(3, 8)).astype("int32"),
        "ngrams": rng.integers(0, 50, size=(3, 12)).astype("int32"),
    }
    assert model(inputs).shape == (3, 2)


def test_textcnn_ngram_branch_is_a_normalized_weighted_sum_that_ignores_padding(float32_policy):
    weights = np.linspace(1.0, 3.0, 50).astype("float32")
    model = build_textcnn(
        30, 8, 2, embedding_dim=4, filters=2, ngram_vocabulary_size=50, ngram_sequence_length=6,
        ngram_weights=weights,
    )
    bag = keras.Model(model.get_layer("ngrams").output, model.get_layer("ngram_bag").output)
    table = model.get_layer("ngram_embedding").embeddings.numpy()
    ngrams = np.asarray([[5, 7, 0, 0, 0, 0], [5, 7, 9, 9, 0, 0]], "int32")
    expected = []
    for row in ngrams:
        ids = row[row > 0]
        expected.append((table[ids] * weights[ids, None]).sum(axis=0) / np.sqrt((weights[ids] ** 2).sum()))
    np.testing.assert_allclose(bag(ngrams).numpy(), expected, rtol=1e-4)
    assert model.get_layer("ngram_weight").get_weights()[0][0, 0] == 0.0  # padding


def test_textcnn_per_class_ngram_weights_make_one_linear_model_per_class(float32_policy):
    rng = np.random.default_rng(0)
    ratios = rng.normal(size=(50, 3)).astype("float32")
    model = build_textcnn(
        30, 8, 3, embedding_dim=4, filters=2, ngram_vocabulary_size=50, ngram_sequence_length=6,
        ngram_weights=ratios,
    )
    plain = build_textcnn(30, 8, 3, embedding_dim=4, filters=2)
    # A trainable weight per n-gram and class, their classifier weights, and the frozen ratios.
    assert model.count_params() == plain.count_params() + 50 * 3 + 3 * 3 + 50 * 3
    table = model.get_layer("ngram_embedding").embeddings.numpy()
    np.testing.assert_array_equal(table, np.ones((50, 3)))  # the naive-Bayes classifier to start from
    # Each class's n-gram score starts in that class's logit only, with a positive weight.
    kernel = model.get_layer("logits").get_weights()[0]
    np.testing.assert_allclose(kernel[-3:], 0.1 * np.eye(3))
    model.get_layer("ngram_embedding").embeddings.assign(rng.normal(size=(50, 3)).astype("float32"))
    table = model.get_layer("ngram_embedding").embeddings.numpy()
    bag = keras.Model(model.get_layer("ngrams").output, model.get_layer("ngram_bag").output)
    ngrams = np.asarray([[5, 7, 0, 0, 0, 0], [5, 7, 9, 11, 0, 0]], "int32")
    expected = [(table[row[row > 0]] * ratios[row[row > 0]]).sum(axis=0) for row in ngrams]
    np.testing.assert_allclose(bag(ngrams).numpy(), expected, rtol=1e-5)
    np.testing.assert_array_equal(model.get_layer("ngram_weight").get_weights()[0][0], np.zeros(3))  # padding


def test_textcnn_with_per_class_ngram_weights_saves_and_reloads(float32_policy, tmp_path):
    ratios = np.random.default_rng(1).normal(size=(40, 2)).astype("float32")
    model = build_textcnn(30, 8, 2, embedding_dim=4, filters=2, ngram_vocabulary_size=40, ngram_weights=ratios)
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    inputs = {"tokens": np.ones((2, 8), "int32"), "ngrams": np.asarray([[3, 4, 0], [5, 0, 0]], "int32")}
    np.testing.assert_allclose(reloaded(inputs).numpy(), model(inputs).numpy(), rtol=1e-6)
    assert reloaded.get_layer("ngram_bag").normalize is False


def test_textcnn_ngram_weights_of_the_wrong_shape_raise(float32_policy):
    with pytest.raises(ValueError, match="ngram_weights of shape"):
        build_textcnn(30, 8, 2, ngram_vocabulary_size=50, ngram_sequence_length=6, ngram_weights=np.ones(49))


def test_textcnn_sequence_shorter_than_a_kernel_raises():
    with pytest.raises(ValueError, match="sequence_length=4"):
        build_textcnn(30, 4, 2, kernel_sizes=(3, 5))


def test_textcnn_l2_adds_a_loss(float32_policy):
    assert build_textcnn(30, 8, 2, embedding_dim=4, filters=2).losses == []
    assert len(build_textcnn(30, 8, 2, embedding_dim=4, filters=2, l2=0.1).losses) == 1


# build_mlp.


def test_mlp_layers_without_batch_normalization_or_dropout(float32_policy):
    model = build_mlp(8, 3, hidden_units=(16, 8))
    assert layer_types(model) == [
        "InputLayer", "Dense", "Activation", "Dense", "Activation", "Dense", "Activation",
    ]  # fmt: skip
    assert model.get_layer("dense_0").use_bias
    assert model(np.ones((4, 8), "float32")).shape == (4, 3)


def test_mlp_layers_with_batch_normalization_and_dropout(float32_policy):
    model = build_mlp(8, 3, hidden_units=(16, 8), batch_normalization=True, dropout=0.3)
    types = layer_types(model)
    assert len(types) == 11
    assert types.count("BatchNormalization") == 2
    assert types.count("Dropout") == 2
    assert types.index("BatchNormalization") < types.index("Activation") < types.index("Dropout")
    assert not model.get_layer("dense_0").use_bias
    assert model.get_layer("dropout_1").rate == pytest.approx(0.3)


def test_mlp_input_is_named_features(float32_policy):
    assert build_mlp(5, 2, hidden_units=(3,)).input_names == ["features"]


@pytest.mark.parametrize(
    "initializer, class_name",
    [
        ("he_normal", "HeNormal"),
        ("he_uniform", "HeUniform"),
        ("glorot_uniform", "GlorotUniform"),
        ("glorot_normal", "GlorotNormal"),
    ],
)
def test_mlp_hidden_initializer(float32_policy, initializer, class_name):
    model = build_mlp(8, 2, hidden_units=(4, 4), initializer=initializer)
    for name in ("dense_0", "dense_1"):
        assert model.get_layer(name).get_config()["kernel_initializer"]["class_name"] == class_name
    assert model.get_layer("logits").get_config()["kernel_initializer"]["class_name"] == "GlorotUniform"


def test_mlp_activation(float32_policy):
    model = build_mlp(8, 2, hidden_units=(4,), activation="tanh")
    assert model.get_layer("tanh_0").get_config()["activation"] == "tanh"


def test_mlp_l1l2_regularizer_losses(float32_policy):
    assert build_mlp(8, 2, hidden_units=(4, 3)).losses == []
    model = build_mlp(8, 2, hidden_units=(4, 3), l1=0.01, l2=0.02)
    losses = [float(loss) for loss in model.losses]
    assert len(losses) == 2
    for name, loss in zip(("dense_0", "dense_1"), losses):
        kernel = model.get_layer(name).kernel.numpy()
        expected = 0.01 * np.abs(kernel).sum() + 0.02 * np.square(kernel).sum()
        assert loss == pytest.approx(expected, rel=1e-4)
        assert loss > 0
    assert model.get_layer("logits").kernel_regularizer is None


def test_mlp_l2_only_regularizer(float32_policy):
    model = build_mlp(8, 2, hidden_units=(4,), l2=0.5)
    config = model.get_layer("dense_0").get_config()["kernel_regularizer"]["config"]
    assert config["l1"] == 0.0
    assert config["l2"] == pytest.approx(0.5)
