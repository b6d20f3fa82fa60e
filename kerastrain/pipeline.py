"""The one training pipeline, which runs a `Recipe` as its config says.

The command line (`kerastrain train`), the Python API (`kerastrain.train`),
the tuner's trials and a job's evaluator task all run the steps below; a
recipe only says how to load its examples, fit its preprocessor and build its
model (see `kerastrain.recipe`).

1. Check the settings, and the cluster role of this process: a job's worker
   and ps tasks serve, its evaluator task evaluates the chief's checkpoints.
2. Load the data and split it (stratified and seeded), then check the run
   folder: a folder that holds another config or was trained on other data is
   refused before anything is written.
3. Fit the preprocessor on the training split (or read the folder's, when a
   run resumes).
4. Start TensorFlow: the strategy, the float policy, the input pipeline, and
   the model built and compiled in the strategy's scope.
5. Train with checkpoints, early stopping and resume; with `--refit`, train a
   new model on the training and validation splits for the best epoch count;
   evaluate on the test split; write the run folder and its report.
"""

import dataclasses
import shutil
import sys
import tempfile

import numpy as np

from kerastrain import files, run_folder
from kerastrain.data import splits
from kerastrain.distribute import cluster


@dataclasses.dataclass
class PreparedData:
    """A run's examples, their split and their class ids.

    Attributes:
        examples: all the `kerastrain.data.Examples` loaded.
        split: the stratified, seeded `splits.Split` of them.
        class_names: the class names, sorted; the model's outputs in order.
        train_labels: class ids of the training split.
        validation_labels: class ids of the validation split.
        test_labels: class ids of the test split.
        train_batch_size: the batch size to train with, when it differs from
            `config.batch_size` (see `splits.training_batch_size`); `None`
            trains with `config.batch_size`.
    """

    examples: object
    split: object
    class_names: list
    train_labels: np.ndarray
    validation_labels: np.ndarray
    test_labels: np.ndarray
    train_batch_size: int = None


def load_data(recipe, config, examples=None):
    """Loads the examples `config.data` names (or takes `examples`) and splits them.

    Args:
        recipe: the `Recipe`.
        config: its validated config.
        examples: `kerastrain.data.Examples` given in memory, which replace
            `config.data`. Defaults to `None`.

    Returns:
        A `PreparedData`.

    Raises:
        UsageError: for data that cannot be read or split.
    """
    if examples is None:
        examples = recipe.load_examples(config)
    split = splits.split_as_configured(examples, config)
    class_names, train_labels, validation_labels, test_labels = splits.encode_labels(split)
    return PreparedData(examples, split, class_names, train_labels, validation_labels, test_labels)


def with_output_dir(recipe, config, examples=None):
    """`config` with its run folder chosen, when `output_dir` is empty (see `run_folder.default_path`)."""
    if config.output_dir:
        return config
    fingerprint = run_folder.fingerprint_examples(examples) if examples is not None else None
    return dataclasses.replace(config, output_dir=run_folder.default_path(recipe.name, config, fingerprint))


def train(recipe, config, examples=None):
    """Trains, evaluates and saves a model of `recipe` as `config` says.

    Rerunning with the same config and data resumes an interrupted run at its
    last finished epoch, and leaves a finished run as it is.

    Args:
        recipe: the `Recipe`.
        config: its config; it is checked here, before anything is written.
        examples: `kerastrain.data.Examples` given in memory, instead of
            loading `config.data`. Defaults to `None`.

    Returns:
        The finished `run_folder.Run`; `None` in a job's task that does not
        write the run folder (a worker, a ps, the evaluator, a non-chief
        worker of multi-worker mirrored).

    Raises:
        UsageError: for bad settings, data or run folder, before anything is
            written.
    """
    # Setup: everything that can be checked without TensorFlow comes first, so
    # that bad input is reported at once and leaves nothing behind.
    config.validate()
    cluster.check_cluster_settings(config)  # a bad --local-cluster or TF_CONFIG, before TensorFlow starts
    if cluster.serve_if_server_task(config.strategy, config.local_cluster, config.cluster_timeout):
        return None  # a worker or ps task of a parameter-server job serves until stopped
    config = with_output_dir(recipe, config, examples)
    if cluster.is_evaluator_task(config.strategy, config.local_cluster):
        evaluate_chief_checkpoints(recipe, config, examples)
        return None
    writes_outputs = cluster.writes_outputs(config.strategy, config.local_cluster)
    if writes_outputs:
        files.check_writable_folder(config.output_dir, "--output-dir")
    else:  # a non-chief worker of multi-worker mirrored: it saves what the chief saves, then drops it
        config = dataclasses.replace(config, output_dir=tempfile.mkdtemp(prefix="kerastrain-worker-"), verbose=2)

    # Load data: a stratified, seeded train/validation/test split. The run
    # folder is checked against the data before anything is written into it.
    data = load_data(recipe, config, examples)
    run = run_folder.RunFolder(config.output_dir)
    data_record = run_folder.describe_data(data.examples)
    run.check_resumable(recipe.name, config, data_record)
    if run.finished:
        print(f"kerastrain: {run.path} already holds this finished run; see its report.html")
        return run_folder.Run(run.path)
    data.train_batch_size = splits.training_batch_size(
        config.batch_size, config.accumulate_steps, len(data.split.train), data.examples.source
    )

    # Prepare: the recipe's preprocessor, fitted on the training split only; a
    # resumed run keeps the one it started with.
    resuming = run.exists(run_folder.PREPROCESSOR)
    preprocessor = run.load_preprocessor() if resuming else recipe.fit_preprocessor(config, data.split.train)

    # TensorFlow starts here. The float policy the run sets is Keras' global
    # one; the caller's is back in force when the run ends (a notebook's own
    # models keep theirs).
    from kerastrain.backend import keras

    caller_policy = keras.mixed_precision.global_policy()
    try:
        return train_model(recipe, config, run, data, data_record, preprocessor, writes_outputs)
    finally:
        keras.mixed_precision.set_global_policy(caller_policy)


def train_model(recipe, config, run, data, data_record, preprocessor, writes_outputs):
    """Steps 4 and 5 of `train`: TensorFlow's part, from the strategy to the report.

    Args:
        recipe: the `Recipe`.
        config: its checked config, with its run folder chosen.
        run: the checked `run_folder.RunFolder`.
        data: the `PreparedData`.
        data_record: `run_folder.describe_data` of the examples.
        preprocessor: the fitted preprocessor.
        writes_outputs: whether this process writes the run folder (the
            chief does).

    Returns:
        The finished `run_folder.Run`, or `None` where `writes_outputs` is
        false.
    """
    # The strategy comes first: it may split the CPU into logical devices,
    # which must happen before anything touches a device.
    from kerastrain import baseline, precision, report, training
    from kerastrain.distribute import strategies

    strategy = strategies.build_strategy(
        config.strategy, config.cpu_devices, config.local_cluster, config.cluster_timeout
    )
    jit_compile = config.jit_compile and strategies.supports_jit_compile(strategy)
    if jit_compile and config.gradient_checkpointing:
        # XLA's common-subexpression pass merges a block's recomputation with its
        # forward pass, so the activations are kept after all: measured, no memory saved.
        jit_compile = False
        print(
            "kerastrain: note: --gradient-checkpointing trains without XLA, which would keep the "
            "activations it recomputes; pass --no-gradient-checkpointing to train with XLA",
            file=sys.stderr,
            flush=True,
        )
    # --precision auto may first time a few training steps per policy (outside the
    # strategy's scope); seeding comes after, so the run's weights do not depend on it.
    choice = precision.choose_for_run(
        recipe, config, preprocessor, data.split.train, data.train_labels, len(data.class_names), jit_compile,
        run.file(run_folder.CONFIG),
    )  # fmt: skip
    policy = precision.apply_choice(choice)
    training.seed_everything(config.seed)
    environment = training.describe_environment(strategy, config.strategy, policy, jit_compile)
    environment["precision_choice"] = choice.to_dict()
    run.create(recipe.name, config, environment, data_record, preprocessor, data.class_names)
    print(
        f"kerastrain: {recipe.name} on {data.examples.source}: {len(data.split.train):,} train, "
        f"{len(data.split.validation):,} validation, {len(data.split.test):,} test examples; "
        f"{len(data.class_names)} classes; {preprocessor.describe()}; {policy} on "
        f"{training.describe_devices(environment)}; "
        + (f"{choice.reason}; " if config.precision == "auto" else "")
        + f"{'resuming' if run.exists(run_folder.HISTORY) else 'run folder'} {run.path}",
        flush=True,
    )
    inputs = training_inputs(recipe, config, strategy, preprocessor, data)
    if inputs.augmentation:
        print(f"kerastrain: augmentation: {inputs.augmentation}", flush=True)

    # Build the model inside the strategy's scope, so its variables are distributed.
    model = build_compiled_model(recipe, config, strategy, preprocessor, len(data.class_names), jit_compile, inputs)

    # Train, with checkpoints, early stopping and resume. A run whose refit was
    # interrupted goes straight back to the refit.
    if refits(config) and run.exists(run_folder.FIRST_TRAINING):
        fit_summary = run.read_json(run_folder.FIRST_TRAINING)
    else:
        fit_summary = training.fit(
            model, run, inputs, config,
            epoch_checkpoints=cluster.keeps_epoch_checkpoints(config.strategy, config.local_cluster),
        )  # fmt: skip

    # --refit: a new model on the training and validation splits together, for
    # the epoch count that early stopping found best.
    refit_summary = None
    if refits(config):
        run.write_json(run_folder.FIRST_TRAINING, fit_summary)
        data = joined_training_data(data)
        model, preprocessor, refit_summary = refit_model(
            recipe, config, strategy, data, training.best_epoch_count(run), jit_compile, model, preprocessor, run
        )

    # Compare with a linear baseline on the same split (the chief alone), then
    # evaluate the best weights on the test split and save everything.
    from kerastrain import tf_data

    baseline_scores = None
    if writes_outputs:
        baseline_scores = baseline.fit_and_score(
            data.split, data.train_labels, data.test_labels, len(data.class_names)
        )
    test_dataset = tf_data.make_dataset(
        preprocessor.model_inputs(data.split.test.inputs), data.test_labels, config.batch_size
    )
    metrics = training.evaluate_and_save(
        model, run, data.class_names, test_dataset, data.test_labels, fit_summary, baseline_scores,
        refit_summary, preprocessor if refit_summary is not None else None,
    )  # fmt: skip
    if not writes_outputs:
        shutil.rmtree(run.path, ignore_errors=True)
        return None
    report.write_report(run.path)
    refit_words = (
        f", refit on {refit_summary['examples']:,} examples for {plural(refit_summary['epochs'], 'epoch')}"
        if refit_summary is not None else ""
    )  # fmt: skip
    print(
        f"kerastrain: test accuracy {metrics['test']['accuracy']:.4f} "
        f"({baseline_scores['accuracy']:.4f} for the linear baseline){refit_words}, "
        f"{metrics['examples_per_second']:.0f} examples/s; outputs and report.html in {run.path}"
    )
    return run_folder.Run(run.path)


def refits(config):
    """Whether `--refit` applies: in one process, as its help says; a cluster job keeps its early-stopped model.

    A job's tasks would all have to train the second model together, and a
    job that an engine restarts would resume into it; its `metrics.json` has
    no `"refit"` entry.
    """
    return config.refit and config.strategy not in cluster.CLUSTER_STRATEGIES


def refit_model(recipe, config, strategy, data, epochs, jit_compile, first_model, first_preprocessor, run):
    """`--refit`: the recipe's preprocessor and model, fitted anew on the training and validation splits.

    The new model trains for `epochs` epochs, the count after which the first
    model's validation loss was lowest, with the same seed, schedule and
    settings; the test split stays held out. When the new model has the first
    one's layers, shapes and optimizer (the recipe's `refit_preprocessor` can
    see to that), its initial weights go into the first model, whose compiled
    training step then trains them (`training.reinitialize`).

    Args:
        recipe: the `Recipe`.
        config: its config.
        strategy: the `tf.distribute.Strategy`.
        data: the `PreparedData` of `joined_training_data`.
        epochs: the number of epochs to train.
        jit_compile: whether to XLA-compile the training step.
        first_model: the model of the first training.
        first_preprocessor: its preprocessor.
        run: the `RunFolder`, whose `backup/refit` lets an interrupted refit
            resume at its last finished epoch.

    Returns:
        A tuple `(model, preprocessor, summary)`, `summary` as
        `training.refit` returns it, with `examples` and
        `reused_training_step`.
    """
    from kerastrain import training

    print(
        f"kerastrain: refit: a new model on the {len(data.split.train):,} training and validation examples for "
        f"{plural(epochs, 'epoch')}, the best epoch count",
        flush=True,
    )
    preprocessor = recipe.fit_refit_preprocessor(config, first_preprocessor, data.split.train)
    training.seed_everything(config.seed)
    inputs = training_inputs(recipe, config, strategy, preprocessor, data)
    model = build_compiled_model(recipe, config, strategy, preprocessor, len(data.class_names), jit_compile, inputs)
    reused = training.reinitialize(first_model, model)
    if reused:
        model = first_model
    summary = training.refit(model, inputs, config, epochs, backup_dir=run.file(run_folder.REFIT_BACKUP))
    return model, preprocessor, {**summary, "examples": len(data.split.train), "reused_training_step": reused}


def joined_training_data(data):
    """`data` with the validation split added to the training split, for `--refit` and its baseline.

    The validation split stays as it was: `training_inputs` makes its dataset,
    which the refit's training does not use.
    """
    joined = splits.join(data.split.train, data.split.validation)
    return dataclasses.replace(
        data,
        split=splits.Split(joined, data.split.validation, data.split.test),
        train_labels=np.concatenate([data.train_labels, data.validation_labels]),
    )


def plural(count, noun):
    """`"1 epoch"`, `"2 epochs"`."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def training_inputs(recipe, config, strategy, preprocessor, data):
    """What `fit` takes under `strategy`: the training and validation splits as the model's inputs.

    Returns:
        A `kerastrain.distribute.inputs.TrainingInputs`.
    """
    from kerastrain.distribute import inputs

    train_inputs = preprocessor.model_inputs(data.split.train.inputs)
    # --augment: the recipe may add inputs that only its batch function reads.
    augmentation = recipe.training_augmentation(config, preprocessor, data.split.train, train_inputs)
    prepared = inputs.make_training_inputs(
        strategy,
        train=(augmentation.train_inputs, data.train_labels),
        validation=(preprocessor.model_inputs(data.split.validation.inputs), data.validation_labels),
        batch_size=data.train_batch_size or config.batch_size,
        seed=config.seed,
        accumulate_steps=config.accumulate_steps,
        length_buckets=recipe.training_length_buckets(config, train_inputs),
        augment=augmentation.augment,
    )
    return dataclasses.replace(prepared, augmentation=augmentation.description)


def build_compiled_model(recipe, config, strategy, preprocessor, num_classes, jit_compile, inputs=None):
    """The recipe's model, built and compiled in `strategy`'s scope with the config's optimizer.

    Args:
        recipe: the `Recipe`.
        config: its config.
        strategy: the `tf.distribute.Strategy`.
        preprocessor: the fitted preprocessor the model is sized by.
        num_classes: the number of classes.
        jit_compile: whether to XLA-compile the training step.
        inputs: the `TrainingInputs`, for the parameter-server evaluation
            shards and the steps per epoch (`--decay-steps 0`). Defaults to
            `None`.

    Returns:
        A compiled `keras.Model` (with gradient accumulation when
        `config.accumulate_steps > 1`).
    """
    from kerastrain import accumulation, optimizers, training

    with strategy.scope():
        model = recipe.build_model(config, preprocessor, num_classes)
        # With --accumulate-steps N, one update averages N micro-batches' gradients.
        model = accumulation.with_gradient_accumulation(model, config.accumulate_steps)
        training.compile_classifier(
            model,
            optimizers.optimizer_from_config(config, inputs.steps_per_epoch if inputs is not None else None),
            config.steps_per_execution,
            jit_compile,
            inputs.evaluation_shards if inputs is not None else 0,
        )
    return model


def evaluate_chief_checkpoints(recipe, config, examples=None):
    """A job's evaluator task: scores each epoch checkpoint of the chief on the validation split.

    It trains nothing and writes only `evaluator/metrics.csv` into the chief's
    run folder (see `kerastrain.distribute.evaluator`).

    Returns:
        The number of checkpoints evaluated.
    """
    from kerastrain import tf_data
    from kerastrain.distribute import evaluator

    run = run_folder.RunFolder(config.output_dir)
    preprocessor, class_names = evaluator.wait_for_chief(run, recipe.name, config, config.evaluator_timeout)
    data = load_data(recipe, config, examples)
    validation_labels = evaluator.encode_like_chief(data.split.validation.labels, class_names)
    print(f"kerastrain: evaluator: {len(data.split.validation)} validation examples; waiting for checkpoints", flush=True)
    model = recipe.build_model(config, preprocessor, len(class_names))
    dataset = tf_data.make_dataset(
        preprocessor.model_inputs(data.split.validation.inputs), validation_labels, config.batch_size
    )
    return evaluator.evaluate_checkpoints(model, dataset, run, config.epochs, config.evaluator_timeout)
