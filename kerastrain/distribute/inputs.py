"""What `Model.fit` takes under each strategy: training and validation data, and the steps.

One process repeats the training data and counts epochs in steps;
`ParameterServerStrategy` makes each worker build its own dataset through a
`DatasetCreator` and evaluates validation in shards; `MultiWorkerMirroredStrategy`
shards a finite dataset over its workers.
"""

import dataclasses
import math

from kerastrain import tf_data
from kerastrain.backend import keras, tf
from kerastrain.distribute import strategies
from kerastrain.errors import UsageError


def worker_shuffle_seed(seed):
    """A shuffle seed that differs between the workers of a parameter-server job.

    Under `ParameterServerStrategy` the coordinator traces the dataset function
    once and every worker runs that same graph, with one input pipeline each
    (TensorFlow passes every worker `input_pipeline_id=0`, so there is nothing
    to shard by). A seed fixed in the graph would give every worker the same
    order, and the workers would train on the same batches at the same time.
    So the seed is drawn on the worker, when it makes its dataset, from its
    clock and `seed`. Asynchronous training is not reproducible anyway; the
    examples of one worker's epoch are still each example once.

    Args:
        seed: the run's `--seed`.

    Returns:
        A scalar `tf.int64` tensor.
    """
    microseconds = tf.cast(tf.timestamp() * 1e6, tf.int64)
    return (microseconds * 1_000_003 + seed) % (2**31 - 1)


def worker_dataset_function(train, batch_size, seed, length_buckets=None, augment=None):
    """The function each parameter-server worker makes its training data with.

    Args:
        train: a tuple `(inputs, labels)` of arrays.
        batch_size: examples per training step.
        seed: the run's `--seed`.
        length_buckets: a `length_buckets.LengthBuckets`, or `None`. Defaults
            to `None`.
        augment: see `tf_data.make_dataset`. Defaults to `None`.

    Returns:
        A function from a `tf.distribute.InputContext` to a repeated, shuffled
        `tf.data.Dataset` of `(inputs, labels)` batches, in an order of the
        worker's own (see `worker_shuffle_seed`).
    """

    def per_worker_dataset(input_context):
        return tf_data.make_dataset(
            *train,
            batch_size,
            shuffle=True,
            seed=worker_shuffle_seed(seed),
            input_context=input_context,
            repeat=True,
            length_buckets=length_buckets,
            augment=augment,
        )

    return per_worker_dataset


def sharded_evaluation_inputs(strategy, validation, batch_size):
    """Validation data that a parameter-server job evaluates exactly once per example.

    Every parameter-server worker reads the whole of a dataset it is given.
    Validation steps counted over a repeated dataset (tf-keras' default) are
    spread over the workers as they come free, so each worker starts from the
    top: the steps cover the first batches twice and never reach the last
    ones. tf-keras' exact evaluation (`compile(pss_evaluation_shards=N)`)
    instead runs N shard functions, each over every N-th batch of a finite
    dataset, and adds up their metrics; a shard that a failed worker was
    running is run again, whole. Each shard is one function call on a worker
    with a fixed cost (about 0.07 s on a 2-core in-process cluster), so there
    is one shard per worker, rather than tf-keras' `"auto"` of 5: on TREC, 10
    shards made 2.1 s epochs 2.6-3.2 s long. One shard per batch at most: with
    more shards than batches, TensorFlow 2.21 fails with an unrelated "FILE
    based sharding" error.

    Args:
        strategy: the `ParameterServerStrategy`.
        validation: a tuple `(inputs, labels)` of arrays.
        batch_size: examples per validation batch.

    Returns:
        A tuple `(dataset_creator, shards)`: a `DatasetCreator` of the finite,
        batched validation data, and the number of shards for `compile`
        (one per worker, and at most one per batch).
    """
    batches = math.ceil(len(validation[1]) / batch_size)
    workers = strategies.worker_count(strategy)

    def per_worker_dataset(input_context):
        return tf_data.make_dataset(*validation, batch_size)  # sharded by batch (see make_dataset)

    return keras.utils.experimental.DatasetCreator(per_worker_dataset), min(workers, batches)


@dataclasses.dataclass
class TrainingInputs:
    """What `Model.fit` takes for one recipe run.

    Attributes:
        train: the training data.
        validation: the validation data.
        fit_arguments: extra `fit` arguments (steps), empty when none are needed.
        examples_per_epoch: training examples one epoch goes through.
        steps_per_epoch: optimizer updates in one epoch, which learning-rate
            schedules count.
        evaluation_shards: under `ParameterServerStrategy`, what `compile`
            takes as `pss_evaluation_shards` (see `sharded_evaluation_inputs`);
            `0` under other strategies.
        augmentation: a few words on how the training batches are augmented
            (see `kerastrain.augmentation`), or why not; empty without
            `--augment`.
    """

    train: object
    validation: object
    fit_arguments: dict
    examples_per_epoch: int
    steps_per_epoch: int
    evaluation_shards: int = 0
    augmentation: str = ""


def make_training_inputs(
    strategy, train, validation, batch_size, seed=0, accumulate_steps=1, length_buckets=None, augment=None
):
    """What `Model.fit` takes for training and validation under `strategy`.

    The training examples are reshuffled every pass and repeated without end,
    and an epoch is `ceil(examples / batch_size)` steps (passed to `fit` as
    `steps_per_epoch`). So every training batch is whole, and has the one shape
    that XLA compiles a step for, and `fit` keeps one iterator for the whole run:
    with a new iterator per epoch, tf-keras' `fit` spent about 1 s between
    epochs on a 2-core machine (measured on the Amazon set, whose epochs take
    1.3 s). Validation data is a plain, finite dataset.

    Under `ParameterServerStrategy` the training data goes through a
    `DatasetCreator`: each worker makes its own dataset of the whole training
    split, shuffled in its own order (see `worker_shuffle_seed`), and
    validation is split into shards that the workers evaluate, each example
    once (see `sharded_evaluation_inputs`; pass `evaluation_shards` to
    `training.compile_classifier`). Under `MultiWorkerMirroredStrategy` the
    training data is a finite dataset without its last, partial batch, which the
    strategy shards over the workers: their all-gathered sparse gradients need
    equal batches.

    With `accumulate_steps > 1` each training batch holds that many batches of
    `batch_size`, which the model's training step splits into micro-batches
    again (see `kerastrain.accumulation`); validation batches stay at
    `batch_size`.

    Args:
        strategy: the `tf.distribute.Strategy` that `fit` runs under.
        train: a tuple `(inputs, labels)` of arrays.
        validation: a tuple `(inputs, labels)` of arrays.
        batch_size: the global batch size.
        seed: seed of the shuffle. Defaults to `0`.
        accumulate_steps: micro-batches per training step. Defaults to `1`.
        length_buckets: a `length_buckets.LengthBuckets` of the training
            inputs: training batches then group texts of similar length, cut to
            a bucket length. Validation batches keep their padding, so that
            validation scores what prediction computes. Not used under
            `MultiWorkerMirroredStrategy`. Defaults to `None`.
        augment: a function `(batches, seed) -> batches` applied to the
            training batches only (see `tf_data.make_dataset`). Defaults to
            `None`.

    Returns:
        A `TrainingInputs`.

    Raises:
        UsageError: under `MultiWorkerMirroredStrategy`, if one training step
            needs more examples than there are.
    """
    train_examples = len(train[1])
    step_batch_size = batch_size * accumulate_steps
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        if train_examples < step_batch_size:
            raise UsageError(
                f"--batch-size {batch_size} x --accumulate-steps {accumulate_steps} is more than the "
                f"{train_examples} training examples, and multi_worker_mirrored leaves out a partial step, "
                "so no step would run. Lower --batch-size or --accumulate-steps."
            )
        steps_per_epoch = train_examples // step_batch_size
        return TrainingInputs(
            train=tf_data.make_dataset(
                *train, step_batch_size, shuffle=True, seed=seed, drop_remainder=True, augment=augment
            ),
            validation=tf_data.make_dataset(*validation, batch_size),
            fit_arguments={},
            examples_per_epoch=steps_per_epoch * step_batch_size,
            steps_per_epoch=steps_per_epoch,
        )
    steps_per_epoch = math.ceil(train_examples / step_batch_size)
    if not isinstance(strategy, tf.distribute.ParameterServerStrategy):
        return TrainingInputs(
            train=tf_data.make_dataset(
                *train,
                step_batch_size,
                shuffle=True,
                seed=seed,
                repeat=True,
                length_buckets=length_buckets,
                augment=augment,
            ),
            validation=tf_data.make_dataset(*validation, batch_size),
            fit_arguments={"steps_per_epoch": steps_per_epoch},
            examples_per_epoch=steps_per_epoch * step_batch_size,
            steps_per_epoch=steps_per_epoch,
        )

    validation_inputs, evaluation_shards = sharded_evaluation_inputs(strategy, validation, batch_size)
    return TrainingInputs(
        train=keras.utils.experimental.DatasetCreator(
            worker_dataset_function(train, step_batch_size, seed, length_buckets, augment)
        ),
        validation=validation_inputs,
        fit_arguments={"steps_per_epoch": steps_per_epoch},
        examples_per_epoch=steps_per_epoch * step_batch_size,
        steps_per_epoch=steps_per_epoch,
        evaluation_shards=evaluation_shards,
    )
