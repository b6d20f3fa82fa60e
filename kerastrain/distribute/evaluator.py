"""Sidecar evaluation: the `evaluator` task of a job evaluates the chief's epoch checkpoints.

While the chief of a TF_CONFIG job trains, it writes a TensorFlow checkpoint
of every epoch into `OUTPUT_DIR/checkpoints/epochs/` and keeps the last five
(see `callbacks.EpochCheckpoint`), whether or not its TF_CONFIG lists an
evaluator: TensorFlow's own layout leaves the evaluator out of the other
tasks' cluster. The
evaluator task runs the same command: it reads the chief's fitted
preprocessor, builds the same model outside any strategy, and evaluates each
new checkpoint on the validation split, one row per epoch (counted from 1) in
`OUTPUT_DIR/evaluator/metrics.csv`. It trains nothing and writes nothing else.
`kerastrain.pipeline.evaluate_chief_checkpoints` runs these steps.

`keras.utils.SidecarEvaluator` runs a similar loop, but it always jumps to the
latest checkpoint (skipping epochs whenever evaluation is slower than
training), writes no per-epoch table, and stops only at a checkpoint number
given in advance, not when the chief stops early; hence this small loop.
"""

import csv
import os
import time

import numpy as np

from kerastrain import run_folder
from kerastrain.errors import UsageError


def wait_for_chief(run, recipe_name, config, timeout_seconds, poll_seconds=1.0):
    """Waits for the chief to write its fitted preprocessor and class names.

    Args:
        run: the chief's `RunFolder`.
        recipe_name: the recipe this task runs; it must be the chief's.
        config: this task's config; it must be the chief's, or the checkpoints
            would not fit the model built from it.
        timeout_seconds: how long to wait.
        poll_seconds: time between two looks. Defaults to `1.0`.

    Returns:
        A tuple `(preprocessor, class_names)`.

    Raises:
        UsageError: if nothing appears in time, or the folder holds a run with
            another config.
    """
    deadline = time.monotonic() + timeout_seconds
    while not (run.exists(run_folder.PREPROCESSOR) and run.exists(run_folder.CLASSES)):
        if time.monotonic() > deadline:
            raise UsageError(
                f"The evaluator waited {timeout_seconds:g} s for the chief's {run_folder.PREPROCESSOR} in "
                f"{run.path}. Start the chief with the same --output-dir, or raise --evaluator-timeout."
            )
        time.sleep(poll_seconds)
    run.check_config(config, recipe_name)
    return run.load_preprocessor(), run.read_json(run_folder.CLASSES)


def encode_like_chief(labels, class_names):
    """The class ids of `labels` in the chief's `class_names`.

    Raises:
        UsageError: for a label the chief has no class for (other data).
    """
    lookup = {name: index for index, name in enumerate(class_names)}
    unknown = sorted({str(label) for label in labels if label not in lookup})
    if unknown:
        raise UsageError(
            f"The evaluator's validation labels include {unknown[0]!r}, which the chief's classes.json lacks. "
            "Give the evaluator the same --data as the chief."
        )
    return np.asarray([lookup[label] for label in labels], dtype=np.int32)


def evaluated_epochs(run):
    """The epochs already in `evaluator/metrics.csv` (an evaluator that restarts skips them)."""
    if not run.exists(run_folder.EVALUATOR_METRICS):
        return set()
    with open(run.file(run_folder.EVALUATOR_METRICS)) as file:
        return {int(row["epoch"]) for row in csv.DictReader(file)}


def append_row(run, row):
    path = run.file(run_folder.EVALUATOR_METRICS)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    is_new = not os.path.exists(path)
    with open(path, "a", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(row))
        if is_new:
            writer.writeheader()
        writer.writerow(row)


def listed_checkpoints(directory):
    """The chief's complete checkpoints as `(epoch, path)` pairs, oldest first."""
    from kerastrain.backend import tf

    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return []
    return sorted((int(path.rpartition("-")[2]), path) for path in state.all_model_checkpoint_paths)


def evaluate_checkpoints(model, dataset, run, epochs, timeout_seconds, poll_seconds=1.0):
    """Evaluates each of the chief's epoch checkpoints once, as it appears.

    Checkpoints are evaluated oldest first, so none is skipped unless the chief
    has already deleted it (it keeps the last five). It stops once the last
    epoch's checkpoint is evaluated, or once the chief has finished (its
    `metrics.json` appeared, as after early stopping) and every checkpoint
    listed before that is evaluated.

    Args:
        model: the model, built as the chief builds it; it is compiled here
            with the chief's loss and metrics.
        dataset: the validation `tf.data.Dataset`.
        run: the chief's `RunFolder`.
        epochs: the epochs the chief trains at most.
        timeout_seconds: longest wait for a new checkpoint.
        poll_seconds: time between two looks. Defaults to `1.0`.

    Returns:
        The number of checkpoints this call evaluated.

    Raises:
        UsageError: if no new checkpoint appears for `timeout_seconds`, or the
            chief's run finished without any.
    """
    from kerastrain import training
    from kerastrain.backend import keras, tf

    # The optimizer is never used: evaluation only needs the loss and metrics.
    training.compile_classifier(model, keras.optimizers.SGD())
    directory = run.file(run_folder.EPOCH_CHECKPOINTS)
    checkpoint = tf.train.Checkpoint(model=model)
    done = evaluated_epochs(run)
    evaluated = 0
    last_progress = time.monotonic()
    while True:
        # Read before listing: a chief that had finished had listed its last checkpoint.
        chief_finished = run.finished
        for epoch, path in listed_checkpoints(directory):
            if epoch in done:
                continue
            try:
                checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
            except tf.errors.NotFoundError:
                print(f"kerastrain: evaluator: epoch {epoch} skipped, its checkpoint was deleted before it was read")
                done.add(epoch)
                continue
            results = model.evaluate(dataset, verbose=0, return_dict=True)
            row = {"epoch": epoch, "val_loss": results["loss"], "val_accuracy": results["accuracy"]}
            append_row(run, row)
            print(
                f"kerastrain: evaluator: epoch {epoch}: val_loss {row['val_loss']:.4f}, "
                f"val_accuracy {row['val_accuracy']:.4f}",
                flush=True,
            )
            done.add(epoch)
            evaluated += 1
            last_progress = time.monotonic()
        if chief_finished and not done:
            raise UsageError(
                f"The chief's run in {run.path} finished without epoch checkpoints in {directory}: the chief "
                "writes them only as a task of a TF_CONFIG job. Train with TF_CONFIG naming the chief's task "
                "(see cluster/tf_config_examples/), not --local-cluster or a single process."
            )
        if epochs in done or chief_finished:
            print(f"kerastrain: evaluator: the chief's run is finished; metrics in {run.file(run_folder.EVALUATOR_METRICS)}")
            return evaluated
        if time.monotonic() - last_progress > timeout_seconds:
            raise UsageError(
                f"The evaluator saw no new checkpoint in {directory} for {timeout_seconds:g} s. "
                "Check that the chief is running with the same --output-dir on storage both tasks share, "
                "or raise --evaluator-timeout."
            )
        time.sleep(poll_seconds)
