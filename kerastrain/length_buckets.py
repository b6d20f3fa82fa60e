"""Training batches of texts of similar length, cut to the padding they need.

Token-id inputs are padded to one length, the 95th percentile of the training
texts by default, so most rows of a batch are mostly padding, and a TextCNN
convolves all of it. `LengthBuckets` groups training examples of similar
length into the same batches and cuts each batch's padding down to one of a
few bucket lengths (the design notes in the docs give the measured effect).

Only the trailing padding that every example of a batch has is cut. The few
bucket lengths keep the number of shapes a compiled (XLA) step sees small: it
compiles once per shape.
"""

import dataclasses
import math

import numpy as np

from kerastrain.backend import tf
from kerastrain.text_vectorization import PADDING_ID

# Examples sorted by length together, as this many batches: enough to find
# similar lengths, few enough that an epoch still mixes the whole split.
POOL_BATCHES = 16


@dataclasses.dataclass(frozen=True)
class LengthBuckets:
    """Per-example lengths of padded token-id inputs, and their bucket lengths.

    Attributes:
        lengths: a dict from input name to an int32 array, each example's
            number of ids before its padding.
        boundaries: a dict from input name to the ascending bucket lengths of
            that input, the same number for every input; the last is the
            padded length.
    """

    lengths: dict
    boundaries: dict

    @classmethod
    def for_padded_inputs(cls, inputs, minimum_lengths, bucket_width=4, max_buckets=8):
        """Measures the padded inputs of a training split and picks bucket lengths.

        Args:
            inputs: a dict from input name to an int array `(examples,
                padded_length)` of ids, padded at the end with 0.
            minimum_lengths: a dict from the names of the inputs to cut to the
                shortest length the model takes for each (a convolution needs
                at least its kernel size).
            bucket_width: about this many ids between the first input's
                bucket lengths, unless that makes more than `max_buckets`.
                Defaults to `4`.
            max_buckets: at most this many buckets; wider ones for long
                sequences. Defaults to `8`.

        Returns:
            A `LengthBuckets`.
        """
        names = list(minimum_lengths)
        padded = {name: int(inputs[name].shape[1]) for name in names}
        count = min(max_buckets, max(1, math.ceil(padded[names[0]] / bucket_width)))
        boundaries = {}
        for name in names:
            steps = np.ceil(padded[name] * np.arange(1, count + 1) / count).astype(int)
            boundaries[name] = tuple(int(value) for value in np.clip(steps, minimum_lengths[name], padded[name]))
        lengths = {name: np.count_nonzero(inputs[name] != PADDING_ID, axis=1).astype(np.int32) for name in names}
        return cls(lengths=lengths, boundaries=boundaries)

    def group_by_length(self, indices, batch_size, seed, drop_remainder=False):
        """Batches a stream of shuffled example indices into batches of similar length.

        Each pool of `POOL_BATCHES` batches' worth of indices is sorted by the
        first input's length and cut into batches, which follow each other in
        an order drawn from `(seed, pool number)`.

        Args:
            indices: a `tf.data.Dataset` of int64 example indices, already
                shuffled.
            batch_size: indices per batch.
            seed: an int or a scalar int64 tensor (a parameter-server worker's
                own seed).
            drop_remainder: leave out a last, partial batch. Defaults to `False`.

        Returns:
            A `tf.data.Dataset` of int64 index batches.
        """
        lengths = tf.constant(next(iter(self.lengths.values())))
        seed = tf.cast(seed, tf.int64)

        def batches_of_pool(pool_number, pool):
            pool = tf.gather(pool, tf.argsort(tf.gather(lengths, pool), stable=True))
            pool_size = tf.shape(pool, out_type=tf.int64)[0]
            batch_count = pool_size // batch_size if drop_remainder else -(-pool_size // batch_size)
            order = tf.random.experimental.stateless_shuffle(
                tf.range(batch_count), seed=tf.stack([seed, pool_number])
            )
            return tf.data.Dataset.from_tensor_slices(order).map(
                lambda batch: pool[batch * batch_size : tf.minimum((batch + 1) * batch_size, pool_size)]
            )

        return indices.batch(batch_size * POOL_BATCHES).enumerate().flat_map(batches_of_pool)

    def cut_padding(self, inputs, batch):
        """Cuts a gathered batch's inputs to its bucket length.

        Args:
            inputs: a dict from input name to the batch's ids.
            batch: the batch's int64 example indices.

        Returns:
            `inputs`, the measured inputs cut to the shortest bucket that holds
            every example of the batch (one bucket for all inputs).
        """
        bucket = 0
        for name, lengths in self.lengths.items():
            longest = tf.reduce_max(tf.gather(tf.constant(lengths), batch))
            boundaries = tf.constant(self.boundaries[name], tf.int32)
            bucket = tf.maximum(bucket, tf.searchsorted(boundaries, tf.reshape(longest, [1]))[0])
        cut = dict(inputs)
        for name, boundaries in self.boundaries.items():
            cut[name] = inputs[name][:, : tf.constant(boundaries, tf.int32)[bucket]]
        return cut
