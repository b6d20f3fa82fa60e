"""Training steps counted on each worker of a parameter-server job.

Under `ParameterServerStrategy` the chief's coordinator hands each call of the
training function (`steps_per_execution` steps) to whichever worker is free, so
a fast worker runs more steps than a slow one and a worker that is away runs
none. The chief alone does not learn which worker ran what, so each worker
counts its own steps.

The count is a per-worker variable: `tf.Variable(..., per_worker_variable=True)`
under the strategy keeps one copy of the variable on each worker, and a traced
function that updates it updates the copy of the worker it runs on (TensorFlow
resolves the variable's handle when the function is dispatched to a worker;
tf-keras' `DynamicLookup` layer keeps its per-worker counts the same way). Each
call of the training function adds its steps to it once they have all run, an
op on the worker itself: the call sends no more RPCs than before. The chief
reads every worker's count after an epoch's steps have finished.

A call that fails midway (its worker was cut off or stopped) is run again
whole on another worker, as TensorFlow runs scheduled functions at least once;
it is counted only for the worker that finished it, so an epoch's counts add
up to its steps. The steps of the failed call that had already run had sent
their updates to the parameter servers, so in such an epoch the model gets a
few more updates than the counts show.

A worker that is restarted gets a new copy of the variable, counting from zero,
so the steps it ran before it failed are lost from its count.
"""

from kerastrain.backend import tf


class WorkerStepCounter:
    """A count of the training steps each worker of a `ParameterServerStrategy` has run.

    Create it before `fit`, then `count_in(model)`. It is not one of the
    model's weights, so it is neither checkpointed nor saved with the model.

    Args:
        strategy: the `tf.distribute.ParameterServerStrategy` the model trains under.

    Example:

    ```python
    counter = WorkerStepCounter(model.distribute_strategy)
    counter.count_in(model)
    model.fit(dataset_creator, epochs=1, steps_per_epoch=20)
    counter.read()  # e.g. [12, 8]: worker 0 ran 12 steps, worker 1 ran 8
    ```
    """

    def __init__(self, strategy):
        if not isinstance(strategy, tf.distribute.ParameterServerStrategy):
            raise ValueError(
                f"Expected a ParameterServerStrategy. Received: strategy={type(strategy).__name__}"
            )
        # A per-worker variable lives through the strategy's coordinator; this
        # makes it now, and `fit` later gets the same one (one per strategy).
        tf.distribute.experimental.coordinator.ClusterCoordinator(strategy)
        from kerastrain.distribute import strategies

        self.num_workers = strategies.worker_count(strategy)
        with strategy.scope():
            self.steps = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="worker_training_steps", per_worker_variable=True
            )

    def count_in(self, model):
        """Makes each training call of `model` add its steps to the count of the worker that ran it.

        It wraps the training function that `fit` builds (with
        `model.make_train_function`), so call it before `fit`.

        Args:
            model: a compiled `keras.Model` under this counter's strategy.
        """
        make_train_function = model.make_train_function

        def counted_make_train_function(force=False):
            function = make_train_function(force=force)
            if not getattr(function, "counts_worker_steps", False):
                function = self.counted_train_function(model)
                model.train_function = function
            return function

        model.make_train_function = counted_make_train_function

    def counted_train_function(self, model):
        """The `fit` training function of `model`, made to count its steps on the worker running it.

        tf-keras schedules its traced training function on the coordinator with
        the number of steps to run (or without, when it runs one step a call);
        this schedules a function that runs it, then adds those steps to the
        count. Only a call that ran all its steps adds them.
        """
        # tf-keras keeps the traced function and the coordinator in these
        # attributes; the count needs the function that runs on the worker.
        traced_function = model.train_tf_function
        coordinator = model._cluster_coordinator
        steps_per_execution = model._steps_per_execution
        single_step = steps_per_execution is None or (
            steps_per_execution.numpy().item() == 1 and not model.autotune_steps_per_execution
        )

        @tf.function(reduce_retracing=True)
        def counted(iterator, steps):
            outputs = traced_function(iterator) if single_step else traced_function(iterator, steps)
            with tf.control_dependencies(tf.nest.flatten(outputs)):
                self.steps.assign_add(tf.cast(steps, tf.int64), read_value=False)
            return outputs

        def train_function(iterator):
            steps = 1 if single_step else steps_per_execution.value()
            return coordinator.schedule(counted, args=(iterator, steps))

        train_function.counts_worker_steps = True
        return train_function

    def read(self):
        """Each worker's count so far.

        Returns:
            A list with one entry per worker, in worker index order: the
            number of training steps it has run, or `None` for a worker whose
            count cannot be read now (it is down, or was restarted and its
            count not yet made again).
        """
        # `read_all()` fails as a whole when one worker is down, so the
        # per-worker values (private) are read one at a time.
        per_worker = self.steps._per_worker_vars
        if per_worker is None:  # No training step has been traced: none has run.
            return [0] * self.num_workers
        counts = []
        for remote_variable in per_worker._values:
            try:
                counts.append(int(remote_variable.get()))
            except tf.errors.OpError:  # Includes the cancelled read of a worker that failed.
                counts.append(None)
        return counts


def throughput_callback(model, path, examples_per_epoch, steps_per_epoch):
    """The callback that writes each worker's share of each epoch, or `None` in one process.

    Under `ParameterServerStrategy` it makes each worker count the training
    steps it runs (see `WorkerStepCounter`), so call it before `fit`. Under
    `MultiWorkerMirroredStrategy` every worker runs every step, and the
    callback shares the job's figures equally.

    Args:
        model: the compiled model.
        path: the CSV file to write (`workers.csv` of the run folder).
        examples_per_epoch: training examples in one epoch, over all workers.
        steps_per_epoch: training steps in one epoch.

    Returns:
        A `callbacks.WorkerThroughput`, or `None`.
    """
    from kerastrain import callbacks
    from kerastrain.distribute import strategies

    strategy = model.distribute_strategy
    examples_per_step = examples_per_epoch // steps_per_epoch
    if strategies.is_parameter_server(strategy):
        counter = WorkerStepCounter(strategy)
        counter.count_in(model)
        return callbacks.WorkerThroughput(path, counter.num_workers, examples_per_step, steps_per_epoch, counter)
    if strategies.is_multi_worker_mirrored(strategy):
        return callbacks.WorkerThroughput(path, strategies.worker_count(strategy), examples_per_step, steps_per_epoch)
    return None
