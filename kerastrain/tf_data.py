"""The edge where NumPy arrays become a `tf.data.Dataset`."""

from kerastrain.backend import tf


def make_dataset(inputs, labels, batch_size, shuffle=False, seed=0):
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
        seed: seed of the shuffle. Defaults to `0`.

    Returns:
        A `tf.data.Dataset` of `(inputs, labels)` batches.
    """
    inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
    labels = tf.convert_to_tensor(labels)
    indices = tf.data.Dataset.range(len(labels))
    if shuffle:
        indices = indices.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    dataset = indices.batch(batch_size).map(
        lambda batch: (
            tf.nest.map_structure(lambda array: tf.gather(array, batch), inputs),
            tf.gather(labels, batch),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    options = tf.data.Options()
    # In-memory data has no files to shard by: shard multi-worker input by batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
