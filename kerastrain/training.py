"""Steps that every recipe shares once its data and model are ready."""

import os
import platform
import time

import joblib

from kerastrain import callbacks as callbacks_lib
from kerastrain import accumulation, evaluation, run_folder
from kerastrain.distribute import cluster, faults, worker_steps
from kerastrain.backend import keras, tf


def seed_everything(seed):
    """Seeds Python's, NumPy's and TensorFlow's random generators."""
    keras.utils.set_random_seed(seed)


def describe_environment(strategy, policy, jit_compile):
    """Versions, devices, strategy, cluster and precision, for `config.json` and reports."""
    if isinstance(strategy, tf.distribute.ParameterServerStrategy):
        # No public API tells the cluster's shape; these attributes are private.
        cluster_shape = {
            "worker": getattr(strategy.extended, "_num_workers", None),
            "ps": getattr(strategy.extended, "_num_ps", None),
        }
    elif getattr(strategy, "cluster_resolver", None) is not None:
        spec = strategy.cluster_resolver.cluster_spec().as_dict()
        cluster_shape = {task: len(addresses) for task, addresses in spec.items()}
    else:
        cluster_shape = {}
    return {
        "cluster": cluster_shape,
        "jit_compile": jit_compile,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "devices": [device.name for device in tf.config.list_logical_devices()],
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "precision": policy,
    }


def describe_devices(environment):
    """A few words on where training runs, such as "2 workers, 1 ps" or "1 replica"."""
    if environment["cluster"]:
        return cluster.describe_tasks(environment["cluster"])
    replicas = environment["replicas"]
    return f"{replicas} replica" if replicas == 1 else f"{replicas} replicas"


def compile_classifier(model, optimizer, steps_per_execution=1, jit_compile=False, evaluation_shards=0):
    """Compiles a softmax classifier on integer labels, with accuracy.

    Args:
        model: the model, built in the strategy's scope.
        optimizer: a tf-keras optimizer or its name.
        steps_per_execution: training steps per call into the graph.
            Defaults to `1`.
        jit_compile: compile the training step with XLA. Defaults to `False`.
        evaluation_shards: under `ParameterServerStrategy`, the shards of
            exact evaluation (`tf_data.TrainingInputs.evaluation_shards`).
            Defaults to `0` (other strategies).
    """
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
        pss_evaluation_shards=evaluation_shards,
    )
    return model


def fit(model, run, inputs, config):
    """Trains with the standard callbacks; resumes if the run was interrupted.

    Args:
        model: the compiled model.
        run: the `RunFolder`.
        inputs: the `tf_data.TrainingInputs` to train and validate on.
        config: the recipe's config.

    Returns:
        A dict with `train_seconds`, `epochs_run` (by this call),
        `examples_per_second`, `train_examples` (one epoch's) and
        `steps_per_epoch` (the optimizer's updates in one epoch, which
        learning-rate schedules count).
    """
    worker_throughput = worker_throughput_callback(model, run, inputs)
    callbacks = callbacks_lib.standard_callbacks(
        run,
        examples_per_epoch=inputs.examples_per_epoch,
        early_stopping_patience=config.early_stopping_patience,
        tensorboard=config.tensorboard,
        epoch_checkpoints=cluster.keeps_epoch_checkpoints(config.strategy, config.local_cluster),
        worker_throughput=worker_throughput,
    )
    verbose = config.verbose
    if isinstance(model.distribute_strategy, tf.distribute.ParameterServerStrategy) and verbose == 1:
        verbose = 2  # tf-keras has no progress bar under a parameter-server strategy.
    if model.jit_compile:
        compile_only_training_step(model)
    start = time.perf_counter()
    # A parameter server lost during training ends the run with exit status 138 (retryable).
    with faults.watch_parameter_servers(model.distribute_strategy, config.cluster_timeout):
        model.fit(
            inputs.train,
            validation_data=inputs.validation,
            epochs=config.epochs,
            callbacks=callbacks,
            verbose=verbose,
            **inputs.fit_arguments,
        )
    train_seconds = time.perf_counter() - start
    epoch_seconds = callbacks[0].epoch_seconds
    examples = inputs.examples_per_epoch * len(epoch_seconds)
    return {
        "train_seconds": train_seconds,
        "epochs_run": len(epoch_seconds),
        "examples_per_second": examples / sum(epoch_seconds) if epoch_seconds else 0.0,
        "train_examples": inputs.examples_per_epoch,
        "steps_per_epoch": inputs.steps_per_epoch,
    }


def worker_throughput_callback(model, run, inputs):
    """The callback that writes each worker's share of each epoch, or `None` in one process.

    Under `ParameterServerStrategy` it makes each worker count the training
    steps it runs (see `kerastrain.distribute.worker_steps`), so call it before `fit`.
    Under `MultiWorkerMirroredStrategy` every worker runs every step, and the
    callback shares the job's figures equally.

    Args:
        model: the compiled model.
        run: the `RunFolder`, whose `workers.csv` it writes.
        inputs: the `tf_data.TrainingInputs` it trains on.

    Returns:
        A `callbacks.WorkerThroughput`, or `None`.
    """
    strategy = model.distribute_strategy
    examples_per_step = inputs.examples_per_epoch // inputs.steps_per_epoch
    if isinstance(strategy, tf.distribute.ParameterServerStrategy):
        counter = worker_steps.WorkerStepCounter(strategy)
        counter.count_in(model)
        return callbacks_lib.WorkerThroughput(
            run.file(run_folder.WORKERS), counter.num_workers, examples_per_step, inputs.steps_per_epoch, counter
        )
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        workers = strategy.num_replicas_in_sync // len(strategy.extended.worker_devices)
        return callbacks_lib.WorkerThroughput(
            run.file(run_folder.WORKERS), workers, examples_per_step, inputs.steps_per_epoch
        )
    return None


def compile_only_training_step(model):
    """Keeps XLA for the training step and runs validation and prediction without it.

    XLA compiles a function once per input shape. The training step runs
    thousands of times and repays its compilation; validation and prediction
    run a cheaper forward pass a few times per epoch, and compiling them, again
    for their last, partial batch, cost more than it saved (on TREC, 2 CPU
    cores: see the README's speed section). tf-keras has one flag for all three
    functions, so the training function is built with it on, then it is
    switched off before the others are built. The private attribute is set
    directly because the public setter discards the built training function.
    """
    model.make_train_function()
    model._jit_compile = False


def local_copy(model):
    """The model with the same weights outside any strategy.

    Under MultiWorkerMirroredStrategy `predict` gathers every worker's batches
    with collective ops, which fail when the workers' shards end in batches of
    different sizes. The test split is small and every worker has all of it, so
    each predicts it whole with a local copy instead.
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def save_preprocessing(run, preprocessor, class_names):
    """Writes the fitted preprocessor and the class names into the run folder.

    Recipes call this before training, so that a job's evaluator task can read
    them while the chief trains. The preprocessor is written to a temporary file
    first, so a reader never sees half of it.
    """
    temporary = run.file(run_folder.PREPROCESSOR + ".tmp")
    joblib.dump(preprocessor, temporary)
    os.replace(temporary, run.file(run_folder.PREPROCESSOR))
    run.write_json(run_folder.CLASSES, list(class_names))


def evaluate_and_save(
    model, run, preprocessor, class_names, test_dataset, test_label_ids, fit_summary, baseline=None
):
    """Restores the best weights, evaluates on the test split and writes the run's outputs.

    Writes `model.keras`, `preprocessor.joblib`, `classes.json`,
    `classification_report.txt`, `confusion_matrix.png` and, last (it marks the
    run finished), `metrics.json`.

    Args:
        model: the trained model.
        run: the `RunFolder`.
        preprocessor: the fitted vectorizer or scaler, saved for prediction.
        class_names: the class names, in output order.
        test_dataset: the test split as a `tf.data.Dataset`, not shuffled.
        test_label_ids: the test split's class ids, in dataset order.
        fit_summary: the dict that `fit` returned.
        baseline: the dict of `kerastrain.baseline.fit_and_score`, stored under
            `"baseline"`; left out when `None`. Defaults to `None`.

    Returns:
        The metrics dict written to `metrics.json`.
    """
    if run.exists(run_folder.BEST_WEIGHTS):
        model.load_weights(run.file(run_folder.BEST_WEIGHTS))
    model = accumulation.plain_model(model)  # saved without its training step
    if isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
        model = local_copy(model)
    results = evaluation.evaluate(model, test_dataset, test_label_ids, class_names)
    evaluation.write_evaluation(results, class_names, run)
    model.save(run.file(run_folder.MODEL))
    save_preprocessing(run, preprocessor, class_names)
    history = run.read_history()
    metrics = {
        "test": {key: results[key] for key in ("accuracy", "loss", "macro_f1")},
        "validation": {
            "best_loss": float(history["val_loss"].min()) if "val_loss" in history else None,
            "best_accuracy": float(history["val_accuracy"].max()) if "val_accuracy" in history else None,
        },
        "epochs": int(len(history)),
        **fit_summary,
    }
    if baseline is not None:
        metrics["baseline"] = baseline
    run.write_json(run_folder.METRICS, metrics)
    return metrics

