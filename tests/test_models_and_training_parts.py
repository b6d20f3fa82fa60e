"""Model builders, optimizers, strategies, tf.data, callbacks, plots,
evaluation and the run folder, each on tiny inputs."""

import json
import math
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn import metrics as sklearn_metrics

from kerastrain import callbacks, evaluation, optimizers, plots, run_folder, tf_data, training
from kerastrain.distribute.inputs import make_training_inputs
from kerastrain.distribute import strategies
from kerastrain.backend import keras, tf
from kerastrain.config import MLPConfig, TextCNNConfig
from kerastrain.errors import UsageError
from kerastrain.models import build_mlp, build_textcnn


@pytest.fixture
def float32_policy():
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


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


def test_textcnn_output_is_float32_under_mixed_bfloat16(mixed_bfloat16_policy):
    model = build_textcnn(30, 8, 2, embedding_dim=4, filters=2)
    assert model.get_layer("conv_3").compute_dtype == "bfloat16"
    assert model.output.dtype == tf.float32
    assert model(np.ones((2, 8), "int32")).dtype == tf.float32


def test_mlp_output_is_float32_under_mixed_bfloat16(mixed_bfloat16_policy):
    model = build_mlp(6, 3, hidden_units=(4,))
    assert model.get_layer("dense_0").compute_dtype == "bfloat16"
    assert model(np.ones((2, 6), "float32")).dtype == tf.float32


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


# Optimizers and schedules.


@pytest.mark.parametrize(
    "name, class_name, momentum, nesterov",
    [
        ("sgd", "SGD", 0.0, False),
        ("momentum", "SGD", 0.8, False),
        ("nesterov", "SGD", 0.8, True),
        ("adagrad", "Adagrad", None, None),
        ("rmsprop", "RMSprop", None, None),
        ("adam", "Adam", None, None),
    ],
)
def test_build_optimizer(name, class_name, momentum, nesterov):
    optimizer = optimizers.build_optimizer(name, 0.05, momentum=0.8)
    assert isinstance(optimizer, getattr(keras.optimizers, class_name))
    config = optimizer.get_config()
    assert config["learning_rate"] == pytest.approx(0.05)
    assert config["clipnorm"] is None
    if momentum is not None:
        assert config["momentum"] == pytest.approx(momentum)
        assert config["nesterov"] is nesterov


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_build_optimizer_clipnorm(name):
    assert optimizers.build_optimizer(name, 0.01, clipnorm=1.5).get_config()["clipnorm"] == pytest.approx(1.5)


def test_build_optimizer_with_a_schedule():
    optimizer = optimizers.build_optimizer("adam", 0.1, schedule="cosine", decay_steps=10)
    assert optimizer.get_config()["learning_rate"]["class_name"] == "CosineDecay"


def test_unknown_optimizer_raises():
    with pytest.raises(UsageError, match="--optimizer.*'adamw'"):
        optimizers.build_optimizer("adamw", 0.1)


def test_constant_schedule_is_the_number():
    assert optimizers.build_schedule("constant", 0.1) == 0.1


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("exponential", {0: 0.1, 5: 0.1 * 0.5**0.5, 10: 0.05, 20: 0.025}),
        ("inverse_time", {0: 0.1, 5: 0.1 / 1.25, 10: 0.1 / 1.5, 20: 0.05}),
        ("cosine", {0: 0.1, 5: 0.05, 10: 0.0, 20: 0.0}),
        ("step", {0: 0.1, 9: 0.1, 10: 0.05, 19: 0.05, 25: 0.025}),
    ],
)
def test_schedule_values(schedule, expected):
    rate = optimizers.build_schedule(schedule, 0.1, decay_steps=10, decay_rate=0.5)
    assert isinstance(rate, keras.optimizers.schedules.LearningRateSchedule)
    for step, value in expected.items():
        assert float(rate(step)) == pytest.approx(value, rel=1e-5, abs=1e-7), step


def test_unknown_schedule_raises():
    with pytest.raises(UsageError, match="--schedule.*'linear'"):
        optimizers.build_schedule("linear", 0.1)


# Strategies.


def test_default_strategy():
    strategy = strategies.build_strategy("default")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert not tf.distribute.has_strategy()


def test_one_device_strategy():
    strategy = strategies.build_strategy("one_device")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert strategy.num_replicas_in_sync == 1
    expected = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
    assert strategy.extended.worker_devices[0].endswith(expected)


def test_model_built_in_a_one_device_scope(float32_policy):
    strategy = strategies.build_strategy("one_device")
    with strategy.scope():
        model = build_mlp(4, 2, hidden_units=(3,))
    assert model.distribute_strategy is strategy


def test_unknown_strategy_raises():
    with pytest.raises(UsageError) as excinfo:
        strategies.build_strategy("tpu")
    message = str(excinfo.value)
    assert "--strategy" in message
    assert "'tpu'" in message
    assert "mirrored" in message


# tf_data.make_dataset.


def epoch_labels(dataset):
    return np.concatenate([labels.numpy() for _, labels in dataset]).tolist()


def test_make_dataset_batches():
    inputs = np.arange(20, dtype="float32").reshape(10, 2)
    dataset = tf_data.make_dataset(inputs, np.arange(10), batch_size=4)
    shapes = [(features.shape.as_list(), labels.shape.as_list()) for features, labels in dataset]
    assert shapes == [([4, 2], [4]), ([4, 2], [4]), ([2, 2], [2])]


def test_make_dataset_keeps_inputs_with_their_labels():
    inputs = np.arange(10, dtype="float32").reshape(10, 1) * 10
    dataset = tf_data.make_dataset(inputs, np.arange(10), batch_size=3, shuffle=True, seed=1)
    for features, labels in dataset:
        np.testing.assert_array_equal(features.numpy()[:, 0], labels.numpy() * 10)


def test_make_dataset_with_dict_inputs():
    inputs = {
        "tokens": np.arange(30, dtype="int32").reshape(10, 3),
        "ngrams": np.arange(50, dtype="int32").reshape(10, 5),
    }
    dataset = tf_data.make_dataset(inputs, np.arange(10), batch_size=4)
    features, labels = next(iter(dataset))
    assert set(features) == {"tokens", "ngrams"}
    assert features["tokens"].shape == (4, 3)
    assert features["ngrams"].shape == (4, 5)
    np.testing.assert_array_equal(features["ngrams"].numpy(), inputs["ngrams"][:4])
    np.testing.assert_array_equal(labels.numpy(), [0, 1, 2, 3])


def test_make_dataset_without_shuffle_keeps_the_order():
    dataset = tf_data.make_dataset(np.zeros((10, 1), "float32"), np.arange(10), batch_size=4)
    assert epoch_labels(dataset) == list(range(10))
    assert epoch_labels(dataset) == list(range(10))


def test_make_dataset_shuffle_changes_the_order_every_epoch_but_keeps_the_set():
    dataset = tf_data.make_dataset(
        np.zeros((32, 1), "float32"), np.arange(32), batch_size=8, shuffle=True, seed=3
    )
    first, second = epoch_labels(dataset), epoch_labels(dataset)
    assert sorted(first) == sorted(second) == list(range(32))
    assert first != list(range(32))
    assert first != second


def test_make_dataset_shuffle_is_seeded():
    def order(seed):
        dataset = tf_data.make_dataset(
            np.zeros((32, 1), "float32"), np.arange(32), batch_size=8, shuffle=True, seed=seed
        )
        return epoch_labels(dataset)

    assert order(5) == order(5)
    assert order(5) != order(6)


def test_parameter_server_workers_shuffle_in_orders_of_their_own():
    # The coordinator traces the dataset function once and every worker runs
    # that graph; with a seed fixed in it, the workers would read the same
    # batches at the same time. A global seed is set, as --seed does.
    tf.random.set_seed(0)
    make_worker_dataset = tf_data.worker_dataset_function((np.zeros((64, 1), "float32"), np.arange(64)), 8, seed=0)

    @tf.function
    def first_batches():
        dataset = make_worker_dataset(tf.distribute.InputContext())
        labels = dataset.take(16).map(lambda inputs, labels: labels).unbatch().batch(128)
        return tf.reshape(labels.get_single_element(), (2, 64))

    first_worker = first_batches().numpy()
    time.sleep(0.01)
    second_worker = first_batches().numpy()
    for one_pass in [*first_worker, *second_worker]:
        assert sorted(one_pass) == list(range(64))  # each example once per pass
    assert list(first_worker[0]) != list(first_worker[1])  # a new order every pass
    assert list(first_worker[0]) != list(second_worker[0])


def test_make_dataset_shards_by_data():
    dataset = tf_data.make_dataset(np.zeros((4, 1), "float32"), np.arange(4), batch_size=2)
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA



def batch_sizes(dataset, steps):
    return [int(labels.shape[0]) for _, labels in dataset.take(steps)]


def test_training_inputs_repeat_whole_batches_and_count_an_epoch_in_steps():
    inputs = make_training_inputs(
        tf.distribute.get_strategy(), (np.zeros((10, 1), "float32"), np.arange(10)), (np.zeros((3, 1), "float32"), np.arange(3)), 4
    )
    assert inputs.steps_per_epoch == 3 and inputs.fit_arguments == {"steps_per_epoch": 3}
    assert inputs.examples_per_epoch == 12
    # Every batch is whole (one shape for XLA), and the examples keep coming.
    assert batch_sizes(inputs.train, 6) == [4] * 6
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in inputs.train.take(5)])
    assert sorted(labels[:10]) == list(range(10)) and sorted(labels[10:20]) == list(range(10))
    assert [int(labels.shape[0]) for _, labels in inputs.validation] == [3]


def test_training_inputs_of_a_split_smaller_than_one_batch_still_fill_it():
    inputs = make_training_inputs(
        tf.distribute.get_strategy(), (np.zeros((3, 1), "float32"), np.arange(3)), (np.zeros((3, 1), "float32"), np.arange(3)), 4
    )
    assert inputs.steps_per_epoch == 1 and inputs.examples_per_epoch == 4
    assert batch_sizes(inputs.train, 2) == [4, 4]


# Callbacks.


@pytest.fixture
def tiny_model(float32_policy):
    return build_mlp(3, 2, hidden_units=(4,))


def shift_weights(model, amount):
    model.set_weights([weights + amount for weights in model.get_weights()])


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


HISTORY_ROWS = {
    "epoch": [0, 1, 2],
    "accuracy": [0.5, 0.7, 0.8],
    "loss": [1.0, 0.6, 0.4],
    "val_accuracy": [0.5, 0.6, 0.7],
    "val_loss": [1.1, 0.8, 0.7],
}


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
        "EpochThroughput", "BestWeightsCheckpoint", "HistoryTrim", "CSVLogger", "HistoryPlot",
        "EarlyStopping", "BackupAndRestore",
    ]  # fmt: skip
    names = [
        type(callback).__name__
        for callback in callbacks.standard_callbacks(run, 100, early_stopping_patience=0, tensorboard=True)
    ]
    assert "EarlyStopping" not in names
    assert names[-1] == "TensorBoard"
    names = [type(callback).__name__ for callback in callbacks.standard_callbacks(run, 100, epoch_checkpoints=True)]
    assert names[3:5] == ["CSVLogger", "EpochCheckpoint"]


def test_history_trim_drops_the_rows_of_epochs_that_run_again_before_the_log_appends(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,0.9\n1,0.5\n2,0.4\n")
    trim = callbacks.HistoryTrim(str(path))
    logger = keras.callbacks.CSVLogger(str(path), append=True)
    for callback in (trim, logger):
        callback.on_train_begin()
    # Resumed from the backup of epoch 1: epoch 2 was logged but runs again.
    for callback in (trim, logger):
        callback.on_epoch_begin(2)
    logger.on_epoch_end(2, {"loss": 0.3})
    trim.on_epoch_begin(3)
    logger.on_epoch_end(3, {"loss": 0.2})
    logger.on_train_end()
    rows = [line.split(",")[:2] for line in path.read_text().splitlines()]
    assert rows == [["epoch", "loss"], ["0", "0.9"], ["1", "0.5"], ["2", "0.3"], ["3", "0.2"]]


def test_history_trim_leaves_a_log_without_rerun_epochs_alone(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,0.9\n1,0.5\n")
    modified = path.stat().st_mtime_ns
    trim = callbacks.HistoryTrim(str(path))
    trim.on_train_begin()
    trim.on_epoch_begin(2)
    assert path.read_text() == "epoch,loss\n0,0.9\n1,0.5\n" and path.stat().st_mtime_ns == modified


def test_standard_callbacks_resume_from_the_best_logged_loss(tmp_path):
    write_history(tmp_path, HISTORY_ROWS)
    run = run_folder.RunFolder(tmp_path)
    checkpoint = callbacks.standard_callbacks(run, 100)[1]
    assert checkpoint.initial_best == math.inf  # no checkpoint file yet
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / run_folder.BEST_WEIGHTS).write_bytes(b"")
    checkpoint = callbacks.standard_callbacks(run, 100)[1]
    assert checkpoint.initial_best == pytest.approx(0.7)


# Plots.


def test_plot_history_returns_a_figure():
    figure = plots.plot_history(pd.DataFrame(HISTORY_ROWS))
    assert isinstance(figure, Figure)
    loss_axis, accuracy_axis = figure.axes
    assert loss_axis.get_title() == "loss"
    assert accuracy_axis.get_title() == "accuracy"
    assert [line.get_label() for line in loss_axis.get_lines()] == ["train", "validation"]
    np.testing.assert_array_equal(loss_axis.get_lines()[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(loss_axis.get_lines()[1].get_ydata(), [1.1, 0.8, 0.7])


def test_plot_history_skips_missing_columns():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib: an empty axis has no legend entries.
        figure = plots.plot_history(pd.DataFrame({"epoch": [0, 1], "loss": [1.0, 0.5]}))
    loss_axis, accuracy_axis = figure.axes
    assert [line.get_label() for line in loss_axis.get_lines()] == ["train"]
    assert len(accuracy_axis.get_lines()) == 0


def tick_texts(labels):
    return [label.get_text() for label in labels]


def test_plot_confusion_matrix_has_class_names_on_the_ticks():
    figure = plots.plot_confusion_matrix([[5, 1, 0], [2, 7, 1], [0, 0, 9]], ["ham", "spam", "eggs"])
    assert isinstance(figure, Figure)
    axis = figure.axes[0]
    assert tick_texts(axis.get_xticklabels()) == ["ham", "spam", "eggs"]
    assert tick_texts(axis.get_yticklabels()) == ["ham", "spam", "eggs"]
    assert axis.get_xlabel() == "predicted"
    assert axis.get_ylabel() == "true"
    annotations = [text.get_text() for text in axis.texts]
    assert annotations == ["5", "1", "0", "2", "7", "1", "0", "0", "9"]


def test_plot_confusion_matrix_normalized():
    figure = plots.plot_confusion_matrix([[3, 1], [0, 0]], ["a", "b"], normalize=True)
    annotations = [text.get_text() for text in figure.axes[0].texts]
    assert annotations == ["0.75", "0.25", "0.00", "0.00"]


def test_plot_confusion_matrix_with_many_classes_has_no_annotations():
    names = [f"class{index}" for index in range(26)]
    figure = plots.plot_confusion_matrix(np.eye(26, dtype=int), names)
    assert len(figure.axes[0].texts) == 0
    assert set(tick_texts(figure.axes[0].get_xticklabels())) <= set(names)


# Evaluation.


@pytest.fixture(scope="module")
def trained_model_and_data():
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 4)).astype("float32")
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype("int32")
    model = build_mlp(4, 2, hidden_units=(8,))
    model.compile(
        optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(features, labels, epochs=5, batch_size=16, verbose=0)
    return model, features, labels


def test_evaluate_matches_sklearn(trained_model_and_data):
    model, features, labels = trained_model_and_data
    dataset = tf_data.make_dataset(features, labels, batch_size=16)
    result = evaluation.evaluate(model, dataset, labels, ["negative", "positive"])
    predicted = np.argmax(model.predict(features, verbose=0), axis=1)
    assert result["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(labels, predicted))
    assert result["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(labels, predicted, average="macro"))
    assert result["confusion_matrix"] == sklearn_metrics.confusion_matrix(labels, predicted).tolist()
    assert result["accuracy"] > 0.7
    keras_results = model.evaluate(features, labels, verbose=0, return_dict=True)
    assert result["accuracy"] == pytest.approx(keras_results["accuracy"], abs=1e-6)
    assert result["loss"] == pytest.approx(keras_results["loss"], rel=1e-4)
    assert "negative" in result["report"] and "positive" in result["report"]
    assert json.loads(json.dumps({key: value for key, value in result.items()})) == result


def test_evaluate_counts_classes_that_are_never_predicted(trained_model_and_data):
    model, features, labels = trained_model_and_data
    dataset = tf_data.make_dataset(features, labels, batch_size=16)
    result = evaluation.evaluate(model, dataset, labels, ["negative", "positive", "unseen"])
    matrix = np.asarray(result["confusion_matrix"])
    assert matrix.shape == (3, 3)
    assert matrix.sum() == len(labels)
    assert matrix[2].sum() == 0 and matrix[:, 2].sum() == 0
    assert "unseen" in result["report"]


def test_write_evaluation(tmp_path, trained_model_and_data):
    model, features, labels = trained_model_and_data
    dataset = tf_data.make_dataset(features, labels, batch_size=16)
    result = evaluation.evaluate(model, dataset, labels, ["negative", "positive"])
    evaluation.write_evaluation(result, ["negative", "positive"], run_folder.RunFolder(tmp_path))
    assert (tmp_path / "classification_report.txt").read_text() == result["report"]
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["classification_report.txt", "confusion_matrix.png"]


# RunFolder.


def test_check_config_of_a_new_folder_passes(tmp_path):
    run_folder.RunFolder(tmp_path / "new").check_config(TextCNNConfig())
    run_folder.RunFolder(tmp_path).check_config(TextCNNConfig())  # exists, empty
    assert list(tmp_path.iterdir()) == []


def test_check_config_same_config_passes(tmp_path):
    run = run_folder.RunFolder(tmp_path / "run")
    config = TextCNNConfig(epochs=2, kernel_sizes=(2, 3))
    run.create(config, {"tensorflow": tf.__version__})
    run.check_config(TextCNNConfig(epochs=2, kernel_sizes=(2, 3)))
    run.check_config(TextCNNConfig(epochs=2, kernel_sizes=(2, 3), verbose=0, output_dir="elsewhere"))
    stored = run.read_json(run_folder.CONFIG)
    assert stored["config"]["epochs"] == 2
    assert stored["environment"] == {"tensorflow": tf.__version__}
    assert (tmp_path / "run" / "checkpoints").is_dir()


def test_check_config_different_config_names_the_field(tmp_path):
    run = run_folder.RunFolder(tmp_path)
    run.create(TextCNNConfig(epochs=2))
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
    run.create(TextCNNConfig())
    with pytest.raises(UsageError, match="different config"):
        run.check_config(MLPConfig())


def test_create_does_not_overwrite_the_stored_config(tmp_path):
    run = run_folder.RunFolder(tmp_path)
    run.create(TextCNNConfig(epochs=2))
    run.create(TextCNNConfig(epochs=5))
    assert run.read_json(run_folder.CONFIG)["config"]["epochs"] == 2


def test_check_config_refuses_a_non_empty_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError) as excinfo:
        run_folder.RunFolder(tmp_path).check_config(TextCNNConfig())
    assert "non-empty folder" in str(excinfo.value)
    assert str(tmp_path) in str(excinfo.value)


def test_check_config_refuses_a_file(tmp_path):
    path = tmp_path / "run.txt"
    path.write_text("not a folder")
    with pytest.raises(UsageError) as excinfo:
        run_folder.RunFolder(path).check_config(TextCNNConfig())
    assert "is a file" in str(excinfo.value)


def test_check_config_refuses_an_unreadable_config(tmp_path):
    (tmp_path / run_folder.CONFIG).write_text("{not json")
    with pytest.raises(UsageError, match="unreadable"):
        run_folder.RunFolder(tmp_path).check_config(TextCNNConfig())


def test_finished_means_metrics_exist(tmp_path):
    run = run_folder.RunFolder(tmp_path)
    assert not run.finished
    run.write_json(run_folder.METRICS, {"accuracy": 1.0})
    assert run.finished
    assert run.read_json(run_folder.METRICS) == {"accuracy": 1.0}
    assert sorted(item.name for item in tmp_path.iterdir()) == ["metrics.json"]


def test_read_history_dedupes_repeated_epochs_keeping_the_last(tmp_path):
    (tmp_path / run_folder.HISTORY).write_text(
        "epoch,loss,val_loss\n0,1.0,1.1\n1,0.8,0.9\n2,0.7,0.8\n1,0.6,0.65\n2,0.5,0.55\n3,0.4,0.45\n"
    )
    history = run_folder.RunFolder(tmp_path).read_history()
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    assert history["loss"].tolist() == [1.0, 0.6, 0.5, 0.4]
    assert history.index.tolist() == [0, 1, 2, 3]


def test_read_history_without_a_file(tmp_path):
    history = run_folder.RunFolder(tmp_path).read_history()
    assert len(history) == 0
    assert "epoch" in history
