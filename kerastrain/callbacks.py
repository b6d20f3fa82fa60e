"""Callbacks of a recipe run: checkpoints, early stopping, resume, logs, plots."""

import csv
import math
import os
import time

from kerastrain import plots, run_folder
from kerastrain.backend import keras, tf


class EpochThroughput(keras.callbacks.Callback):
    """Adds `epoch_seconds` and `examples_per_second` to each epoch's logs.

    Put it before the callbacks that write logs, so they record both.

    Args:
        examples_per_epoch: training examples in one epoch.
    """

    def __init__(self, examples_per_epoch):
        super().__init__()
        self.examples_per_epoch = examples_per_epoch

    def on_train_begin(self, logs=None):
        self.epoch_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.epoch_start
        self.epoch_seconds.append(seconds)
        if logs is not None:
            logs["epoch_seconds"] = seconds
            logs["examples_per_second"] = self.examples_per_epoch / seconds


class WorkerThroughput(keras.callbacks.Callback):
    """Writes each worker's training steps, examples and examples per second of every epoch.

    Each epoch appends one row per worker to a CSV file (`workers.csv` in a
    run folder) with the columns `epoch`, `worker`, `steps`, `examples`,
    `examples_per_second` and `source`:

    - `source` is `counted` when a `counter` is given (parameter servers): a
      worker's steps are those it counted itself in the epoch, and its
      examples are its steps times the examples of one step. A worker whose
      count cannot be read at the end of an epoch (it is down) gets empty
      figures for that epoch and the next, as its count may start again from
      zero when it returns.
    - `source` is `derived` without one (multi-worker mirrored): every worker
      runs every step on an equal share of the step's batch, so each gets the
      epoch's steps and `1 / num_workers` of its examples. Nothing is measured
      per worker.

    Examples per second divide by the epoch's seconds as the chief times
    them, so the workers' figures add up to the job's. Put it after
    `EpochThroughput`, whose `epoch_seconds` it reads from the logs. The
    file's first column is the epoch, counted from 1, so `HistoryTrim` can
    trim it on resume.

    Args:
        path: the CSV file, appended to.
        num_workers: the workers that run training steps.
        examples_per_step: training examples in one step, over all workers.
        steps_per_epoch: training steps in one epoch.
        counter: the `worker_steps.WorkerStepCounter` to read, or `None` when
            every worker runs every step. Defaults to `None`.
    """

    COLUMNS = ("epoch", "worker", "steps", "examples", "examples_per_second", "source")

    def __init__(self, path, num_workers, examples_per_step, steps_per_epoch, counter=None):
        super().__init__()
        self.path = path
        self.num_workers = num_workers
        self.examples_per_step = examples_per_step
        self.steps_per_epoch = steps_per_epoch
        self.counter = counter

    def on_train_begin(self, logs=None):
        self.last_counts = self.counter.read() if self.counter is not None else None

    def on_epoch_end(self, epoch, logs=None):
        seconds = (logs or {}).get("epoch_seconds", math.nan)
        if self.counter is None:
            steps = [self.steps_per_epoch] * self.num_workers
            examples_per_worker_step = self.examples_per_step / self.num_workers
            source = "derived"
        else:
            counts = self.counter.read()
            steps = [
                count - last if count is not None and last is not None and count >= last else None
                for count, last in zip(counts, self.last_counts)
            ]
            self.last_counts = counts
            examples_per_worker_step = self.examples_per_step
            source = "counted"
        rows = []
        for worker, worker_steps in enumerate(steps):
            if worker_steps is None:
                rows.append([epoch + 1, worker, "", "", "", source])
                continue
            examples = worker_steps * examples_per_worker_step
            rows.append([epoch + 1, worker, worker_steps, examples, examples / seconds, source])
        is_new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        with open(self.path, "a", newline="") as file:
            writer = csv.writer(file)
            if is_new:
                writer.writerow(self.COLUMNS)
            writer.writerows(rows)


class BestWeightsCheckpoint(keras.callbacks.Callback):
    """Saves the weights whenever the monitored value improves, atomically.

    The weights go to a temporary file that then replaces the checkpoint, so an
    interrupted save never leaves a half-written checkpoint behind.

    Args:
        path: the checkpoint file, ending in `.h5`.
        monitor: the logged value to minimize. Defaults to `"val_loss"`.
        best: the value to beat, such as the best of an interrupted run that is
            resuming. Defaults to `math.inf`.
    """

    def __init__(self, path, monitor="val_loss", best=math.inf):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.initial_best = best

    def on_train_begin(self, logs=None):
        self.best = self.initial_best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not value < self.best:
            return
        self.best = value
        temporary = self.path.removesuffix(".h5") + ".tmp.h5"
        self.model.save_weights(temporary)
        os.replace(temporary, self.path)


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model's weights at the end of every epoch, for an evaluator task to read.

    Each save is a TensorFlow checkpoint named `epoch-N` (N counted from 1, as
    in `history.csv`). TensorFlow writes a checkpoint's files first and then
    replaces the `checkpoint` state file that lists it, so a reader that goes by
    the state file (`tf.train.get_checkpoint_state`) never sees a half-written
    one. Only the last `max_to_keep` are kept.

    Args:
        directory: the folder of the checkpoints.
        max_to_keep: how many of the latest checkpoints to keep. Defaults to `5`.
    """

    def __init__(self, directory, max_to_keep=5):
        super().__init__()
        self.directory = directory
        self.max_to_keep = max_to_keep

    def on_train_begin(self, logs=None):
        self.manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=self.model),
            self.directory,
            max_to_keep=self.max_to_keep,
            checkpoint_name="epoch",
        )

    def on_epoch_end(self, epoch, logs=None):
        self.manager.save(checkpoint_number=epoch + 1)


class EpochLog(keras.callbacks.Callback):
    """Appends one CSV row per epoch: the epoch, counted from 1, then every logged value.

    Unlike `keras.callbacks.CSVLogger`, epochs count from 1, as on the console
    and in the report. A file that exists is appended to, with its own header,
    so a resumed run continues its log.

    Args:
        path: the CSV file.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        columns = None
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, newline="") as file:
                columns = next(csv.reader(file), None)
        if not columns:
            columns = ["epoch", *sorted(logs)]
            with open(self.path, "w", newline="") as file:
                csv.writer(file).writerow(columns)
        values = {"epoch": epoch + 1, **{name: float(value) for name, value in logs.items()}}
        with open(self.path, "a", newline="") as file:
            csv.writer(file).writerow([values.get(name, "") for name in columns])


class HistoryTrim(keras.callbacks.Callback):
    """On resume, removes the log rows of epochs that are about to run again.

    `BackupAndRestore` saves after the CSV log line of an epoch, so a run
    killed between the two has logged an epoch that it trains again when it
    resumes. Before the first epoch of this `fit` starts, this drops the rows
    of that epoch and later ones from the log, so every epoch appears once.
    The file is rewritten in place. Put it before the callback that appends
    to the log (`EpochLog`).

    Args:
        path: the CSV log, whose first column is the epoch, counted from 1.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_begin(self, logs=None):
        self.checked = False

    def on_epoch_begin(self, epoch, logs=None):
        if self.checked:
            return
        self.checked = True
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            return
        with open(self.path, "r+") as file:
            header, *rows = file.readlines()
            # `epoch` counts from 0: the epochs logged before it are 1 .. epoch.
            kept = [row for row in rows if row.split(",", 1)[0].strip().isdigit() and int(row.split(",", 1)[0]) <= epoch]
            if len(kept) == len(rows):
                return
            file.seek(0)
            file.writelines([header, *kept])
            file.truncate()


class HistoryPlot(keras.callbacks.Callback):
    """Draws `history.png` from the run's `history.csv` during and after training.

    Reading the CSV rather than this fit's logs makes the plot of a resumed
    run show the epochs before the interruption too. Drawing takes a quarter of
    a second, as long as a whole epoch of a small dataset, so during training the
    plot is redrawn at most every `min_interval_seconds`; it is always drawn when
    training ends.

    Args:
        run: the `RunFolder` whose `history.csv` `EpochLog` writes.
        min_interval_seconds: least time between two redraws during training.
            Defaults to `30.0`.
    """

    def __init__(self, run, min_interval_seconds=30.0):
        super().__init__()
        self.run = run
        self.min_interval_seconds = min_interval_seconds
        self.last_drawn = -math.inf

    def on_train_begin(self, logs=None):
        self.last_drawn = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self.last_drawn >= self.min_interval_seconds:
            self.draw()

    def on_train_end(self, logs=None):
        self.draw()

    def draw(self):
        history = self.run.read_history()
        if len(history):
            self.run.save_figure("history.png", plots.plot_history(history))
        self.last_drawn = time.monotonic()


class BackupBeforeLastEpoch(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` for a run of a known number of epochs: no backup after the last.

    The backup is deleted when training ends, so the one after the last epoch
    is never read; for the refit's one or two epochs it would be most of the
    callback's cost.

    Args:
        backup_dir: the folder of the backup.
        epochs: the epochs that `fit` runs.
    """

    def __init__(self, backup_dir, epochs):
        super().__init__(backup_dir)
        self.backup_dir = backup_dir
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 < self.epochs:
            super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        # BackupAndRestore deletes its backup and leaves the emptied folder behind.
        if os.path.isdir(self.backup_dir) and not os.listdir(self.backup_dir):
            os.rmdir(self.backup_dir)


def standard_callbacks(
    run,
    examples_per_epoch,
    early_stopping_patience=3,
    tensorboard=False,
    epoch_checkpoints=False,
    worker_throughput=None,
):
    """The callbacks every recipe trains with.

    In order: per-epoch throughput, optionally each worker's share of it
    (`workers.csv`, trimmed on resume as `history.csv` is), the best-weights
    checkpoint (`checkpoints/best.h5`), the CSV log (`history.csv`, appended
    to on resume, without the rows of epochs that run again), optionally a
    checkpoint of every epoch for an evaluator task (`checkpoints/epochs/`),
    the history plot (`history.png`, redrawn at most
    every 30 s and at the end), early stopping on the validation
    loss that restores the best weights, `BackupAndRestore` (`backup/`, so that
    rerunning an interrupted command resumes at its last finished epoch), and
    optionally TensorBoard (`tensorboard/`).

    Args:
        run: the `RunFolder` to write into.
        examples_per_epoch: training examples per epoch, for throughput.
        early_stopping_patience: epochs without improvement before stopping; `0`
            disables early stopping. Defaults to `3`.
        tensorboard: whether to write TensorBoard logs. Defaults to `False`.
        epoch_checkpoints: whether to checkpoint every epoch for an evaluator
            task. Defaults to `False`.
        worker_throughput: a `WorkerThroughput` that writes each worker's
            share of a cluster run, or `None` in one process. Defaults to
            `None`.

    Returns:
        A list of `keras.callbacks.Callback`.
    """
    history = run.read_history()
    best = history["val_loss"].min() if "val_loss" in history and run.exists(run_folder.BEST_WEIGHTS) else math.inf
    callbacks = [EpochThroughput(examples_per_epoch)]
    if worker_throughput is not None:
        callbacks += [HistoryTrim(worker_throughput.path), worker_throughput]
    callbacks += [
        BestWeightsCheckpoint(run.file(run_folder.BEST_WEIGHTS), best=best),
        HistoryTrim(run.file(run_folder.HISTORY)),
        EpochLog(run.file(run_folder.HISTORY)),
    ]
    if epoch_checkpoints:
        callbacks.append(EpochCheckpoint(run.file(run_folder.EPOCH_CHECKPOINTS)))
    callbacks.append(HistoryPlot(run))
    if early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=early_stopping_patience, restore_best_weights=True
            )
        )
    callbacks.append(keras.callbacks.BackupAndRestore(run.file(run_folder.BACKUP)))
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(run.file("tensorboard")))
    return callbacks
