"""Steps that every recipe shares once its data and model are ready."""

import platform
import time

from kerastrain import accumulation, evaluation, run_folder, step_functions
from kerastrain import callbacks as callbacks_lib
from kerastrain.backend import keras, tf
from kerastrain.distribute import cluster, faults, strategies, worker_steps


def seed_everything(seed):
    """Seeds Python's, NumPy's and TensorFlow's random generators."""
    keras.utils.set_random_seed(seed)


def describe_environment(strategy, strategy_name, policy, jit_compile):
    """Versions, devices, strategy, cluster and precision, for `config.json` and reports.

    Args:
        strategy: the `tf.distribute.Strategy` the run trains under.
        strategy_name: its `--strategy` name, as users know it (`"default"`).
        policy: the name of the float policy in force.
        jit_compile: whether the training step is XLA-compiled.
    """
    return {
        "cluster": strategies.describe_cluster(strategy),
        "jit_compile": jit_compile,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "devices": [device.name for device in tf.config.list_logical_devices()],
        "strategy": strategy_name,
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

    Its `fit` and `evaluate` trace the training and test steps once (see
    `step_functions`).

    Args:
        model: the model, built in the strategy's scope.
        optimizer: a tf-keras optimizer or its name.
        steps_per_execution: training steps per call into the graph.
            Defaults to `1`.
        jit_compile: compile the training step with XLA. Defaults to `False`.
        evaluation_shards: under `ParameterServerStrategy`, the shards of
            exact evaluation (`tf_data.TrainingInputs.evaluation_shards`).
            Defaults to `0` (other strategies).

    Returns:
        `model`.
    """
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
        pss_evaluation_shards=evaluation_shards,
    )
    return step_functions.trace_steps_once(model)


def fit(model, run, inputs, config, epoch_checkpoints=False):
    """Trains with the standard callbacks; resumes if the run was interrupted.

    Args:
        model: the compiled model.
        run: the `RunFolder`.
        inputs: the `distribute.inputs.TrainingInputs` to train and validate on.
        config: the recipe's config.
        epoch_checkpoints: also keep a checkpoint of each of the last epochs,
            for a job's evaluator task. Defaults to `False`.

    Returns:
        A dict with `train_seconds`, `epochs_run` (by this call),
        `examples_per_second`, `train_examples` (one epoch's) and
        `steps_per_epoch` (the optimizer's updates in one epoch, which
        learning-rate schedules count).
    """
    worker_throughput = worker_steps.throughput_callback(
        model, run.file(run_folder.WORKERS), inputs.examples_per_epoch, inputs.steps_per_epoch
    )
    callbacks = callbacks_lib.standard_callbacks(
        run,
        examples_per_epoch=inputs.examples_per_epoch,
        early_stopping_patience=config.early_stopping_patience,
        tensorboard=config.tensorboard,
        epoch_checkpoints=epoch_checkpoints,
        worker_throughput=worker_throughput,
    )
    verbose = prepare_to_fit(model, config)
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


def best_epoch_count(run):
    """The number of epochs after which the run's validation loss was lowest, from `history.csv`."""
    history = run.read_history()
    return int(history.loc[history["val_loss"].idxmin(), "epoch"])


def refit(model, inputs, config, epochs, backup_dir=None):
    """Trains `model` for exactly `epochs` epochs on `inputs.train`, with no validation or checkpoints.

    The second training of `--refit`: a new model on the training and
    validation splits together, for the epoch count that early stopping found
    best on the first.

    Args:
        model: the compiled model, freshly built (or reinitialized).
        inputs: the `distribute.inputs.TrainingInputs` of the joined splits.
        config: the recipe's config.
        epochs: the number of epochs.
        backup_dir: a folder for a backup after each epoch but the last, so
            that rerunning an interrupted refit resumes at its last finished
            epoch; `None` keeps no backup. Defaults to `None`.

    Returns:
        A dict with `epochs`, `train_examples` (one epoch's), `train_seconds`
        and `examples_per_second` (of the epochs this call trained).
    """
    throughput = callbacks_lib.EpochThroughput(inputs.examples_per_epoch)
    callbacks = [throughput]
    if backup_dir is not None and epochs > 1:  # one epoch has no resume point to keep
        callbacks.append(callbacks_lib.BackupBeforeLastEpoch(backup_dir, epochs))
    verbose = prepare_to_fit(model, config)
    start = time.perf_counter()
    model.fit(inputs.train, epochs=epochs, callbacks=callbacks, verbose=verbose, **inputs.fit_arguments)
    train_seconds = time.perf_counter() - start
    seconds = sum(throughput.epoch_seconds)
    return {
        "epochs": epochs,
        "train_examples": inputs.examples_per_epoch,
        "train_seconds": train_seconds,
        "examples_per_second": inputs.examples_per_epoch * len(throughput.epoch_seconds) / seconds if seconds else 0.0,
    }


def reinitialize(model, fresh_model):
    """Gives the compiled `model` the weights and optimizer state of `fresh_model`, when they are alike.

    `--refit` trains a second model whose layers, shapes and optimizer are
    those of the first: copying the second's initial weights and a fresh
    optimizer state into the first lets `fit` reuse the first's traced (and
    XLA-compiled) training step, which a new model would trace and compile
    again. Anything that differs, down to a layer's setting or the
    optimizer's, leaves `model` untouched.

    Args:
        model: the compiled, possibly trained model.
        fresh_model: a newly built and compiled model, not trained.

    Returns:
        Whether `model` now holds `fresh_model`'s state; if not, train
        `fresh_model` instead.
    """
    plain, fresh_plain = accumulation.plain_model(model), accumulation.plain_model(fresh_model)
    if type(model) is not type(fresh_model) or plain.get_config() != fresh_plain.get_config():
        return False
    if [weight.shape for weight in model.weights] != [weight.shape for weight in fresh_model.weights]:
        return False
    optimizer, fresh_optimizer = inner_optimizer(model.optimizer), inner_optimizer(fresh_model.optimizer)
    if type(optimizer) is not type(fresh_optimizer) or optimizer.get_config() != fresh_optimizer.get_config():
        return False
    with model.distribute_strategy.scope():
        # The slots a new optimizer starts with (zeros for Adam, Adagrad's initial accumulator).
        fresh_optimizer.build(model.trainable_variables)
    slots, fresh_slots = list(optimizer.variables), list(fresh_optimizer.variables)
    if len(slots) == 1:  # never applied: only its step counter exists
        fresh_slots = fresh_slots[:1]
    if [slot.shape for slot in slots] != [slot.shape for slot in fresh_slots]:
        return False
    model.set_weights(fresh_model.get_weights())
    for slot, fresh_slot in zip(slots, fresh_slots):
        slot.assign(fresh_slot)
    if not hasattr(model, "_training_state"):
        # tf-keras' BackupAndRestore deletes this attribute when fit ends, and a
        # second fit of the same model fails where it looks it up.
        model._training_state = None
    return True


def inner_optimizer(optimizer):
    """The optimizer that a loss-scale optimizer (`mixed_float16`) wraps, or `optimizer` itself."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def prepare_to_fit(model, config):
    """Builds an XLA model's training step alone (see `compile_only_training_step`) and returns `fit`'s verbosity.

    A progress bar (`--verbose 1`) becomes one line per epoch under a
    strategy whose `fit` cannot draw one.
    """
    if model.jit_compile:
        compile_only_training_step(model)
    if config.verbose == 1 and not strategies.has_progress_bar(model.distribute_strategy):
        return 2
    return config.verbose


def compile_only_training_step(model):
    """Keeps XLA for the training step and runs validation and prediction without it.

    XLA compiles a function once per input shape. The training step runs
    thousands of times and repays its compilation; validation and prediction
    run a cheaper forward pass a few times per epoch, and compiling them, again
    for their last, partial batch, cost more than it saved (see the design
    notes in the docs). tf-keras has one flag for all three
    functions, so the training function is built with it on, then it is
    switched off before the others are built. This needs a training function
    that takes the flag when it is built (`step_functions`); tf-keras's own
    reads it when first traced, so under one of those the flag stays on, for
    all three. The private attribute is set directly because the public setter
    discards the built training function.
    """
    if step_functions.decides_xla_when_built(model.make_train_function()):
        model._jit_compile = False


def evaluate_and_save(
    model, run, class_names, test_dataset, test_label_ids, fit_summary, baseline=None, refit_summary=None,
    refit_preprocessor=None,
):  # fmt: skip
    """Restores the best weights, evaluates on the test split and writes the run's outputs.

    Writes `model.keras`, `classification_report.txt`, `confusion_matrix.png`
    and, last (it marks the run finished), `metrics.json`. The preprocessor
    and the class names were written when the run started; a refitted model
    (`--refit`) keeps its own weights and replaces the preprocessor with its
    own just before `metrics.json`.

    Args:
        model: the trained model.
        run: the `RunFolder`.
        class_names: the class names, in output order.
        test_dataset: the test split as a `tf.data.Dataset`, not shuffled.
        test_label_ids: the test split's class ids, in dataset order.
        fit_summary: the dict that `fit` returned.
        baseline: the dict of `kerastrain.baseline.fit_and_score`, stored under
            `"baseline"`; left out when `None`. Defaults to `None`.
        refit_summary: the dict that `refit` returned, stored under
            `"refit"`, when `model` is the refitted model. Defaults to `None`.
        refit_preprocessor: the preprocessor that the refitted model was
            fitted with. Defaults to `None`.

    Returns:
        The metrics dict written to `metrics.json`.
    """
    if refit_summary is None and run.exists(run_folder.BEST_WEIGHTS):
        model.load_weights(run.file(run_folder.BEST_WEIGHTS))
    model = accumulation.plain_model(model)  # saved without its training step
    results = evaluation.evaluate(strategies.evaluation_copy(model), test_dataset, test_label_ids, class_names)
    evaluation.write_evaluation(results, class_names, run)
    model.save(run.file(run_folder.MODEL))
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
    if refit_summary is not None:
        metrics["refit"] = refit_summary
        run.replace_preprocessor(refit_preprocessor)
    run.write_json(run_folder.METRICS, metrics)
    return metrics

