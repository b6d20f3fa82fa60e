"""Tests for kerastrain.length_buckets and the length-bucketed training data."""

import collections

import numpy as np
import pytest

from kerastrain import tf_data
from kerastrain.distribute.inputs import make_training_inputs
from kerastrain.backend import keras, tf
from kerastrain.config import TextCNNConfig
from kerastrain.length_buckets import POOL_BATCHES, LengthBuckets
from kerastrain.models import build_textcnn
from kerastrain.recipes import textcnn


def padded_ids(lengths, padded_length, first_id=2):
    """Rows of distinct ids, row i holding lengths[i] ids then padding."""
    ids = np.zeros((len(lengths), padded_length), np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = np.arange(first_id, first_id + length)
    return ids


def texts_of_lengths(count, padded_length, seed=0):
    lengths = np.random.default_rng(seed).integers(1, padded_length + 1, size=count)
    inputs = {
        "tokens": padded_ids(lengths, padded_length),
        "ngrams": padded_ids(2 * lengths - 1, 2 * padded_length - 1),
    }
    return inputs, lengths


def test_bucket_lengths_start_at_the_minimum_and_end_at_the_padded_length():
    inputs, lengths = texts_of_lengths(50, 16)
    buckets = LengthBuckets.for_padded_inputs(inputs, {"tokens": 5, "ngrams": 1})
    assert buckets.boundaries["tokens"] == (5, 8, 12, 16)
    assert buckets.boundaries["ngrams"] == (8, 16, 24, 31)
    np.testing.assert_array_equal(buckets.lengths["tokens"], lengths)
    np.testing.assert_array_equal(buckets.lengths["ngrams"], 2 * lengths - 1)


def test_long_sequences_get_at_most_max_buckets():
    inputs, _ = texts_of_lengths(20, 200)
    buckets = LengthBuckets.for_padded_inputs(inputs, {"tokens": 5}, max_buckets=8)
    boundaries = buckets.boundaries["tokens"]
    assert len(boundaries) == 8 and boundaries[-1] == 200
    assert list(boundaries) == sorted(boundaries)


def test_cut_padding_keeps_every_id_and_cuts_all_inputs_to_one_bucket():
    inputs, lengths = texts_of_lengths(40, 16)
    buckets = LengthBuckets.for_padded_inputs(inputs, {"tokens": 5, "ngrams": 1})
    for batch in ([0, 1, 2], [int(np.argmin(lengths))], list(range(40))):
        gathered = {name: tf.gather(array, batch) for name, array in inputs.items()}
        cut = buckets.cut_padding(gathered, tf.constant(batch, tf.int64))
        expected = max(
            int(np.searchsorted(buckets.boundaries["tokens"], lengths[batch].max())),
            int(np.searchsorted(buckets.boundaries["ngrams"], (2 * lengths[batch] - 1).max())),
        )
        assert cut["tokens"].shape[1] == buckets.boundaries["tokens"][expected]
        assert cut["ngrams"].shape[1] == buckets.boundaries["ngrams"][expected]
        for name in inputs:
            assert np.count_nonzero(cut[name].numpy()) == np.count_nonzero(gathered[name].numpy())


def test_grouped_batches_hold_each_example_once_per_pass_and_similar_lengths():
    count, batch_size = 1000, 10
    inputs, lengths = texts_of_lengths(count, 30)
    buckets = LengthBuckets.for_padded_inputs(inputs, {"tokens": 3})
    indices = tf.data.Dataset.range(count).shuffle(count, seed=1)
    batches = [batch.numpy() for batch in buckets.group_by_length(indices, batch_size, seed=0)]
    assert sorted(np.concatenate(batches).tolist()) == list(range(count))
    assert all(len(batch) == batch_size for batch in batches)
    spread = np.mean([np.ptp(lengths[batch]) for batch in batches])
    shuffled_spread = np.mean([np.ptp(lengths[batch]) for batch in np.random.default_rng(0).permutation(count).reshape(-1, batch_size)])
    assert spread < shuffled_spread / 4
    # Within a pool the batches do not come shortest first.
    first_pool = [lengths[batch].max() for batch in batches[:POOL_BATCHES]]
    assert first_pool != sorted(first_pool)


def test_grouped_batches_with_a_partial_last_pool_and_batch():
    inputs, _ = texts_of_lengths(37, 12)
    buckets = LengthBuckets.for_padded_inputs(inputs, {"tokens": 3})
    indices = tf.data.Dataset.range(37)
    kept = [batch.numpy() for batch in buckets.group_by_length(indices, 8, seed=0)]
    assert sorted(np.concatenate(kept).tolist()) == list(range(37))
    dropped = [batch.numpy() for batch in buckets.group_by_length(indices, 8, seed=0, drop_remainder=True)]
    assert [len(batch) for batch in dropped] == [8, 8, 8, 8]


def test_training_dataset_cuts_padding_and_keeps_the_examples():
    batch_size = 16
    count = 2 * POOL_BATCHES * batch_size  # pools then never straddle two passes
    inputs, lengths = texts_of_lengths(count, 24)
    labels = np.arange(count)  # each example's label is its index
    buckets = LengthBuckets.for_padded_inputs(inputs, {"tokens": 4, "ngrams": 1})
    dataset = tf_data.make_dataset(inputs, labels, batch_size, shuffle=True, seed=3, repeat=True, length_buckets=buckets)
    steps_per_pass = int(np.ceil(count / batch_size))
    widths = collections.Counter()
    seen = []
    for batch_inputs, batch_labels in dataset.take(steps_per_pass * 2):
        tokens = batch_inputs["tokens"].numpy()
        widths[tokens.shape[1]] += 1
        assert tokens.shape[0] == batch_size  # repeated data: every batch whole
        for row, index in zip(tokens, batch_labels.numpy()):
            np.testing.assert_array_equal(row, inputs["tokens"][index, : tokens.shape[1]])
            assert lengths[index] <= tokens.shape[1]
        seen.extend(batch_labels.numpy())
    assert sorted(seen[:count]) == list(range(count))  # each pass holds every example once
    assert sorted(seen[count:]) == list(range(count))
    assert len(widths) > 1 and max(widths) <= 24


def test_validation_batches_keep_their_padding():
    inputs, _ = texts_of_lengths(50, 20)
    buckets = LengthBuckets.for_padded_inputs(inputs, {"tokens": 3, "ngrams": 1})
    training_inputs = make_training_inputs(
        tf.distribute.get_strategy(), (inputs, np.arange(50) % 2), (inputs, np.arange(50) % 2), 8, length_buckets=buckets
    )
    assert {batch["tokens"].shape[1] for batch, _ in training_inputs.validation} == {20}


@pytest.mark.parametrize("enabled", [True, False])
def test_recipe_buckets_tokens_and_ngrams_unless_switched_off(enabled):
    config = TextCNNConfig(kernel_sizes=(3, 4, 5), length_buckets=enabled)
    inputs, _ = texts_of_lengths(30, 16)
    buckets = textcnn.training_length_buckets(config, inputs)
    if not enabled:
        assert buckets is None
    else:
        assert set(buckets.boundaries) == {"tokens", "ngrams"}
        assert buckets.boundaries["tokens"][0] == 5  # the largest kernel size


def test_textcnn_takes_any_length_from_its_largest_kernel_size():
    keras.mixed_precision.set_global_policy("float32")
    model = build_textcnn(30, 16, 2, embedding_dim=4, filters=2, kernel_sizes=(3, 5), ngram_vocabulary_size=20, ngram_sequence_length=31)
    for length in (5, 9, 16):
        tokens = np.ones((3, length), "int32")
        ngrams = np.ones((3, 2 * length - 1), "int32")
        assert model({"tokens": tokens, "ngrams": ngrams}).shape == (3, 2)
