"""The edge where NumPy arrays become a `tf.data.Dataset`."""

import math

from kerastrain.backend import keras, tf


def make_dataset(
    inputs, labels, batch_size, shuffle=False, seed=0, input_context=None, repeat=False, drop_remainder=False
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
        seed: seed of the shuffle. Defaults to `0`.
        input_context: a `tf.distribute.InputContext`; each input pipeline then
            reads only its own shard of the examples. Defaults to `None`.
        repeat: repeat the examples without end (parameter-server training
            counts epochs in steps). Defaults to `False`.
        drop_remainder: leave out the last, partial batch. Defaults to `False`.

    Returns:
        A `tf.data.Dataset` of `(inputs, labels)` batches.
    """
    inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
    labels = tf.convert_to_tensor(labels)
    count = int(labels.shape[0])  # static: inside a traced dataset function len() fails
    indices = tf.data.Dataset.range(count)
    if input_context is not None:
        indices = indices.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if shuffle:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        indices = indices.repeat()
    dataset = indices.batch(batch_size, drop_remainder=drop_remainder).map(
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


def steps_per_epoch(strategy, examples, batch_size):
    """Training steps (optimizer updates) in one epoch under `strategy`.

    Every strategy takes `ceil(examples / batch_size)` steps, except
    `MultiWorkerMirroredStrategy`, which leaves out the last partial batch (see
    `make_training_inputs`).

    Args:
        strategy: the `tf.distribute.Strategy` that `fit` runs under.
        examples: number of training examples.
        batch_size: the global batch size.

    Returns:
        An int.
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return examples // batch_size
    return math.ceil(examples / batch_size)


def make_training_inputs(strategy, train, validation, batch_size, seed=0):
    """What `Model.fit` takes for training and validation under `strategy`.

    Under `ParameterServerStrategy` the training data goes through a
    `DatasetCreator`, so that each worker reads its own shard, repeated, and an
    epoch is `ceil(examples / batch_size)` steps over all workers; validation is
    repeated and counted in steps too. Under every other strategy both are
    plain datasets, which the strategy distributes itself; under
    `MultiWorkerMirroredStrategy` training leaves out the last partial batch.

    Args:
        strategy: the `tf.distribute.Strategy` that `fit` runs under.
        train: a tuple `(inputs, labels)` of arrays.
        validation: a tuple `(inputs, labels)` of arrays.
        batch_size: the global batch size.
        seed: seed of the shuffle. Defaults to `0`.

    Returns:
        A tuple `(train_input, validation_input, fit_arguments)`, the last a dict
        of extra `fit` arguments (steps), empty when none are needed.
    """
    if not isinstance(strategy, tf.distribute.ParameterServerStrategy):
        # Synchronous workers all-gather sparse (embedding) gradients, which needs
        # equal batches on every worker: no partial batch. The shuffle changes
        # every epoch, so every example is still seen.
        multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        return (
            make_dataset(*train, batch_size, shuffle=True, seed=seed, drop_remainder=multi_worker),
            make_dataset(*validation, batch_size),
            {},
        )

    def per_worker_dataset(input_context):
        return make_dataset(*train, batch_size, shuffle=True, seed=seed, input_context=input_context, repeat=True)

    fit_arguments = {
        "steps_per_epoch": steps_per_epoch(strategy, len(train[1]), batch_size),
        "validation_steps": math.ceil(len(validation[1]) / batch_size),
    }
    return (
        keras.utils.experimental.DatasetCreator(per_worker_dataset),
        make_dataset(*validation, batch_size, repeat=True),
        fit_arguments,
    )
