"""tf_data.make_dataset: batches, order, shuffling and sharding."""

import numpy as np

from kerastrain import tf_data
from kerastrain.backend import tf


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


def test_make_dataset_shards_by_data():
    dataset = tf_data.make_dataset(np.zeros((4, 1), "float32"), np.arange(4), batch_size=2)
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA
