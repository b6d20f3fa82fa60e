"""The edge where NumPy arrays become a `tf.data.Dataset`.

What `fit` takes under each strategy (repeated training data, per-worker
datasets, sharded validation) is built from these datasets in
`kerastrain.distribute.inputs`.
"""

from kerastrain.backend import tf


def make_dataset(
    inputs,
    labels,
    batch_size,
    shuffle=False,
    seed=0,
    input_context=None,
    repeat=False,
    drop_remainder=False,
    length_buckets=None,
    augment=None,
):
    """Batches in-memory arrays into a dataset that strategies can shard.

    Whole batches are gathered from the arrays by index, rather than slicing one
    example at a time, which keeps the input pipeline far from being the
    bottleneck of small models.

    Args:
        inputs: an array, or a dict from input name to array, with one row per
            example.
        labels: an int array of class ids.
        batch_size: the global batch size.
        shuffle: reshuffle the examples every epoch. Defaults to `False`.
        seed: seed of the shuffle, an int, or a scalar `tf.int64` tensor for
            data that repeats (see `endless_permutations`). Defaults to `0`.
        input_context: a `tf.distribute.InputContext`; each input pipeline then
            reads only its own shard of the examples. Defaults to `None`.
        repeat: repeat the examples without end (parameter-server training
            counts epochs in steps). Defaults to `False`.
        drop_remainder: leave out the last, partial batch. Defaults to `False`.
        length_buckets: a `length_buckets.LengthBuckets` of padded token-id
            inputs: shuffled batches then hold examples of similar length, and
            each batch's padding is cut to its bucket length. Defaults to
            `None` (batches as they come, padded to the arrays' length).
        augment: a function `(batches, seed) -> batches` that changes the
            inputs of every batch at random (training data only; see
            `kerastrain.augmentation`). Defaults to `None`.

    Returns:
        A `tf.data.Dataset` of `(inputs, labels)` batches.
    """
    inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
    labels = tf.convert_to_tensor(labels)
    count = int(labels.shape[0])  # static: inside a traced dataset function len() fails
    if shuffle and repeat and tf.is_tensor(seed):
        indices = endless_permutations(count, seed)
    else:
        indices = tf.data.Dataset.range(count)
        if shuffle:
            indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            indices = indices.repeat()
    if input_context is not None:
        indices = indices.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if length_buckets is not None and shuffle:
        batches = length_buckets.group_by_length(indices, batch_size, seed, drop_remainder)
    else:
        batches = indices.batch(batch_size, drop_remainder=drop_remainder)

    def gather(batch):
        batch_inputs = tf.nest.map_structure(lambda array: tf.gather(array, batch), inputs)
        if length_buckets is not None:
            batch_inputs = length_buckets.cut_padding(batch_inputs, batch)
        return batch_inputs, tf.gather(labels, batch)

    dataset = batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augment is not None:
        dataset = augment(dataset, seed)
    options = tf.data.Options()
    # In-memory data has no files to shard by: shard multi-worker input by batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def endless_permutations(count, seed):
    """The indices `0 .. count - 1`, pass after pass, each pass in a new order.

    Pass `p` is the permutation that `tf.random.experimental.index_shuffle`
    draws from `(seed, p)`. Unlike `Dataset.shuffle`, this takes a seed that is
    a tensor whatever the global seed is (`Dataset.shuffle` fails on a tensor
    seed when the global seed is 0).

    Args:
        count: the number of examples.
        seed: a scalar `tf.int64` tensor.

    Returns:
        An endless `tf.data.Dataset` of `tf.int64` indices.
    """

    def shuffled(position):
        seeds = tf.stack([seed, position // count])
        return tf.random.experimental.index_shuffle(position % count, seeds, count - 1)

    return tf.data.Dataset.counter().map(shuffled, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
