"""`--tune`: a hyperparameter search over a recipe's config, with KerasTuner.

Each trial trains the recipe's own model with the trial's values on the train
split and is scored by its best validation loss. KerasTuner's oracle
(Bayesian optimization by default, or random search) picks the trials and keeps
the search's state in `OUTPUT_DIR/tuning/`, so rerunning the same command
resumes the search. Bad trials end early in two ways: early stopping on the
validation loss (the config's `early_stopping_patience`) and the median
stopping rule (`MedianStopping`).

Why not KerasTuner's Keras `Tuner` (or its `Hyperband`): KerasTuner picks its
Keras by what is installed, not by `TF_USE_LEGACY_KERAS`. TensorFlow 2.21
installs Keras 3, so KerasTuner's `Tuner` checks models against Keras 3's
`Model` class and passes Keras 3 callbacks to `fit`; kerastrain's models are
tf-keras models. Its framework-free `BaseTuner` with our own `run_trial` uses
no Keras at all, only the oracle. Hyperband would also spend its budget in
epochs rather than trials, and resume trials from other trials' weights.

Outputs, in `OUTPUT_DIR/tuning/`: KerasTuner's project files, one
`trial_ID/curve.json` per trial (its validation curve), `trials.csv` (one row
per trial: `trial`, `status`, one column per searched field, `val_loss`,
`val_accuracy`) and `best.toml`, a preset of the base values and the best
trial's values.
"""

import csv
import dataclasses
import json
import math
import os
import statistics

from kerastrain.backend import keras, tf  # before KerasTuner: it imports TensorFlow
from kerastrain import pipeline, precision, run_folder, training
from kerastrain.data import splits
from kerastrain.distribute import strategies
from kerastrain.errors import UsageError
from kerastrain.search import search_space

import keras_tuner  # noqa: E402  (after kerastrain.backend, see above)
from keras_tuner.engine import base_tuner  # noqa: E402

PROJECT = run_folder.TUNING
SEARCH = "search.json"
CURVE = "curve.json"
TRIALS = "trials.csv"
BEST_PRESET = "best.toml"
OBJECTIVE = "val_loss"


class MedianStopping(keras.callbacks.Callback):
    """Stops a trial that is doing worse than the earlier trials did.

    The median stopping rule: after each epoch past `grace_epochs`, a trial
    stops when its best validation loss so far is worse than the median of the
    earlier trials' best validation losses up to the same epoch. It needs no
    extra budget and no assumptions about the curves' shapes, and it never stops
    a trial that is better than half of those before it.

    Args:
        earlier_curves: the validation losses per epoch of earlier trials.
        grace_epochs: epochs every trial runs before it may be stopped.
            Defaults to `1`.
        minimum_trials: earlier trials needed before any trial is stopped.
            Defaults to `2`.
    """

    def __init__(self, earlier_curves, grace_epochs=1, minimum_trials=2):
        super().__init__()
        self.earlier_curves = [curve for curve in earlier_curves if curve]
        self.grace_epochs = grace_epochs
        self.minimum_trials = minimum_trials

    def on_train_begin(self, logs=None):
        self.best = math.inf
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(OBJECTIVE)
        if value is None:
            return
        self.best = min(self.best, value) if not math.isnan(value) else self.best
        if epoch < self.grace_epochs or len(self.earlier_curves) < self.minimum_trials:
            return
        earlier_bests = [min(curve[: epoch + 1]) for curve in self.earlier_curves]
        if self.best > statistics.median(earlier_bests):
            self.model.stop_training = True
            self.stopped_epoch = epoch


class RecipeTuner(base_tuner.BaseTuner):
    """Runs trials of a recipe: its preprocessing and model, with the trial's values.

    Args:
        oracle: the KerasTuner oracle that picks the trials.
        base_config: the recipe's config without the searched values.
        recipe: the `Recipe`.
        data: the `pipeline.PreparedData` that every trial trains on.
        jit_compile: whether to XLA-compile the training step.
        directory: the run folder.
    """

    def __init__(self, oracle, base_config, recipe, data, jit_compile, directory):
        self.base_config = base_config
        self.recipe = recipe
        self.data = data
        self.jit_compile = jit_compile
        super().__init__(oracle, directory=directory, project_name=PROJECT, overwrite=False)

    def trial_config(self, trial):
        overrides = search_space.trial_overrides(trial.hyperparameters.values, type(self.base_config))
        config = dataclasses.replace(self.base_config, **overrides)
        config.validate()
        return config

    def run_trial(self, trial):
        config = self.trial_config(trial)
        earlier_curves = [read_curve(self.project_dir, other)["val_loss"] for other in self.finished_trials()]
        curve = train_trial(config, self.recipe, self.data, self.jit_compile, earlier_curves)
        write_json(os.path.join(self.get_trial_dir(trial.trial_id), CURVE), curve)
        best_epoch = min(range(len(curve["val_loss"])), key=lambda epoch: nan_last(curve["val_loss"][epoch]))
        return {OBJECTIVE: curve["val_loss"][best_epoch], "val_accuracy": curve["val_accuracy"][best_epoch]}

    def on_trial_begin(self, trial):
        if self.base_config.verbose:
            values = search_space.trial_overrides(trial.hyperparameters.values, type(self.base_config))
            chosen = ", ".join(f"{name}={format_value(value)}" for name, value in values.items())
            print(f"kerastrain: trial_{trial.trial_id} ({len(self.oracle.trials)} of {self.oracle.max_trials}): {chosen}")

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle records the trial's status and score
        if self.base_config.verbose:
            row = trial_row(self, self.oracle.get_trial(trial.trial_id), list(trial.hyperparameters.values))
            score = f"val_loss {row[OBJECTIVE]:.4f}, val_accuracy {row['val_accuracy']:.4f}" if row[OBJECTIVE] != "" else ""
            print(f"kerastrain: trial_{trial.trial_id} {row['status']} {score}".rstrip())

    def finished_trials(self):
        return [
            trial
            for trial in self.oracle.trials.values()
            if trial.status == keras_tuner.engine.trial.TrialStatus.COMPLETED
            and os.path.exists(os.path.join(self.project_dir, f"trial_{trial.trial_id}", CURVE))
        ]


def train_trial(config, recipe, data, jit_compile, earlier_curves):
    """Trains one trial's model on the train split; returns its validation curve.

    The trial fits its own preprocessor (a trial may change its settings) and
    builds the model as a run does (`pipeline.training_inputs`,
    `pipeline.build_compiled_model`), under the default strategy.

    Returns:
        A dict with `val_loss` and `val_accuracy` per epoch, and `pruned_at`:
        the epoch the median stopping rule stopped it at, or `None`.
    """
    keras.backend.clear_session()  # drop the previous trial's models and graphs
    training.seed_everything(config.seed)
    strategy = tf.distribute.get_strategy()
    preprocessor = recipe.fit_preprocessor(config, data.split.train)
    inputs = pipeline.training_inputs(recipe, config, strategy, preprocessor, data)
    model = pipeline.build_compiled_model(
        recipe, config, strategy, preprocessor, len(data.class_names), jit_compile, inputs
    )
    if jit_compile:
        training.compile_only_training_step(model)
    median_stopping = MedianStopping(earlier_curves)
    callbacks = [keras.callbacks.TerminateOnNaN(), median_stopping]
    if config.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(OBJECTIVE, patience=config.early_stopping_patience))
    history = model.fit(
        inputs.train,
        validation_data=inputs.validation,
        **inputs.fit_arguments,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=0 if config.verbose == 0 else 2,
    )
    return {
        "val_loss": [float(value) for value in history.history[OBJECTIVE]],
        "val_accuracy": [float(value) for value in history.history["val_accuracy"]],
        # Stopped at the last epoch is not stopped early.
        "pruned_at": median_stopping.stopped_epoch if len(history.history[OBJECTIVE]) < config.epochs else None,
    }


def search(recipe, config, space):
    """Runs (or resumes) the search; writes `trials.csv` and `best.toml`.

    Args:
        recipe: the `Recipe` whose model is searched.
        config: the recipe's validated base config, under the default strategy,
            with its run folder chosen.
        space: the checked `search_space.SearchSpace`.

    Returns:
        The best trial's config, to train the final model with in the same
        folder; `None` if the folder already holds the model of an earlier
        best config (a resumed search with a larger budget found a better one).

    Raises:
        UsageError: if the run folder holds something else than this search, or
            if no trial finished.
    """
    project_dir = os.path.join(config.output_dir, PROJECT)
    check_search_folder(config, space, project_dir)
    data = pipeline.load_data(recipe, config)
    data.train_batch_size = splits.training_batch_size(
        config.batch_size, config.accumulate_steps, len(data.split.train), data.examples.source
    )

    strategy = strategies.build_strategy(
        config.strategy, config.cpu_devices, config.local_cluster, config.cluster_timeout
    )
    policy = precision.apply_precision(config.precision, config.strategy)
    jit_compile = config.jit_compile and strategies.supports_jit_compile(strategy)
    os.makedirs(project_dir, exist_ok=True)
    write_json(os.path.join(project_dir, SEARCH), search_identity(config, space))
    print(
        f"kerastrain: searching {', '.join(space.names)} over {space.max_trials} trials "
        f"({space.algorithm}) on {len(data.split.train)} train and {len(data.split.validation)} validation "
        f"examples of {data.examples.source}; {policy}; state in {project_dir}"
    )

    oracle_class = {
        "bayesian": keras_tuner.oracles.BayesianOptimizationOracle,
        "random": keras_tuner.oracles.RandomSearchOracle,
    }[space.algorithm]
    oracle = oracle_class(
        objective=keras_tuner.Objective(OBJECTIVE, "min"),
        max_trials=space.max_trials,
        hyperparameters=search_space.to_hyperparameters(space),
        allow_new_entries=False,
        tune_new_entries=False,
        seed=config.seed,
    )
    tuner = RecipeTuner(oracle, config, recipe, data, jit_compile, config.output_dir)
    oracle.verbose = 0  # KerasTuner numbers trials from 1, its folders from 0: we print our own lines.
    try:
        tuner.search()
    except RuntimeError as error:  # KerasTuner gives up after 3 failed trials in a row.
        raise UsageError(
            f"3 trials in a row failed, the last with {last_line(error)} Fix the [tune] table; "
            f"each trial's error is in {project_dir}/trial_*/trial.json."
        ) from None

    rows = trial_rows(tuner, space)
    write_trials_csv(os.path.join(project_dir, TRIALS), rows, space)
    best_trials = oracle.get_best_trials(1)
    if not best_trials:
        raise UsageError(f"No trial of the search finished. Each trial's error is in {project_dir}/trial_*/trial.json.")
    best_trial = best_trials[0]
    best_config = tuner.trial_config(best_trial)
    best_path = os.path.join(project_dir, BEST_PRESET)
    write_preset(
        best_path, recipe.name, best_config, space.names, f"trial_{best_trial.trial_id}, val_loss {best_trial.score:.6g}"
    )
    chosen = ", ".join(f"{name}={format_value(getattr(best_config, name))}" for name in space.names)
    print(
        f"kerastrain: best of {len(rows)} trials is trial_{best_trial.trial_id}, "
        f"val_loss {best_trial.score:.4f}: {chosen}\n"
        f"kerastrain: trials in {os.path.join(project_dir, TRIALS)}; best config in {best_path}"
    )
    train_elsewhere = f"kerastrain train {recipe.name} --config {best_path} --output-dir NEW_FOLDER"
    try:
        run_folder.RunFolder(config.output_dir).check_config(best_config, recipe.name)
    except UsageError:
        # A resumed search with a larger budget found a better config than the
        # one whose model this folder already holds; that model stays.
        print(
            f"kerastrain: {config.output_dir} holds the model of an earlier best config; "
            f"train the new best with: {train_elsewhere}"
        )
        return None
    print(f"kerastrain: training the best config in {config.output_dir}; to train it elsewhere: {train_elsewhere}")
    return best_config


def check_search_folder(config, space, project_dir):
    """Checks that the run folder is new, or holds this same search.

    Raises:
        UsageError: if the folder is a file, holds something other than a
            kerastrain search, or a search with another config or `[tune]` table.
    """
    path = config.output_dir
    if os.path.isfile(path):
        raise UsageError(f"--output-dir {path} is a file. Pass a folder path.")
    search_file = os.path.join(project_dir, SEARCH)
    if not os.path.exists(search_file):
        if os.path.isdir(path) and os.listdir(path):
            raise UsageError(
                f"--output-dir {path} is a non-empty folder without a kerastrain search. "
                "Pass a new or empty folder to --tune."
            )
        return
    with open(search_file) as file:
        stored = json.load(file)
    wanted = search_identity(config, space)
    differences = [
        f"[tune] {name}" if part == "tune" else name
        for part in wanted
        for name in sorted(set(wanted[part]) | set(stored.get(part, {})))
        if wanted[part].get(name) != stored.get(part, {}).get(name)
    ]
    if differences:
        raise UsageError(
            f"--output-dir {path} holds a search with a different {differences[0]}. Pass a new "
            "--output-dir, or the same preset and flags to resume that search."
        )


def search_identity(config, space):
    """What makes two searches the same search; `max_trials` may grow on resume."""
    table = {name: value for name, value in space.table.items() if name != "max_trials"}
    return json.loads(json.dumps({"config": config.compared_items(), "tune": table}))


def trial_rows(tuner, space):
    """One dict per trial, in trial order, with the `trials.csv` columns."""
    trials = sorted(tuner.oracle.trials.values(), key=lambda trial: int(trial.trial_id))
    return [trial_row(tuner, trial, space.names) for trial in trials]


def trial_row(tuner, trial, names):
    """A trial's `trials.csv` row: `trial` (its folder's number), `status`
    (`completed`, `pruned`, `failed` or `running`), its values of `names`,
    `val_loss` and `val_accuracy` (at its best epoch; empty if it failed)."""
    statuses = keras_tuner.engine.trial.TrialStatus
    if trial.status == statuses.COMPLETED:
        pruned = read_curve(tuner.project_dir, trial).get("pruned_at") is not None
        status = "pruned" if pruned else "completed"
    elif trial.status in (statuses.FAILED, statuses.INVALID):
        status = "failed"
    else:
        status = str(trial.status).lower()
    values = search_space.trial_overrides(trial.hyperparameters.values, type(tuner.base_config))
    row = {"trial": int(trial.trial_id), "status": status}
    row.update({name: format_value(values[name]) if name in values else "" for name in names})
    for metric in (OBJECTIVE, "val_accuracy"):
        exists = trial.metrics.exists(metric) and status != "failed"
        row[metric] = trial.metrics.get_best_value(metric) if exists else ""
    return row


def write_trials_csv(path, rows, space):
    columns = ["trial", "status", *space.names, OBJECTIVE, "val_accuracy"]
    temporary = path + ".tmp"
    with open(temporary, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)


def write_preset(path, recipe_name, config, searched, found):
    """Writes `config` as a TOML preset: the fields that differ from the defaults.

    The `searched` fields and `output_dir` are always written, so the file says
    what was found and where the model trained with it is.

    Args:
        path: the `.toml` file.
        recipe_name: the recipe's name, written as the preset's `recipe`.
        config: the config to write.
        searched: the names of the searched fields.
        found: a few words on where the values come from, for the file's header.
    """
    defaults = type(config)()
    lines = [
        f"# The best of a --tune search: {found}. Its model is trained in output_dir; to train it again:",
        f"#   kerastrain train {recipe_name} --config {path} --output-dir NEW_FOLDER",
        f"recipe = {toml_value(recipe_name)}",
    ]
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if value != getattr(defaults, item.name) or item.name in (*searched, "output_dir"):
            lines.append(f"{item.name} = {toml_value(value)}")
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        file.write("\n".join(lines) + "\n")
    os.replace(temporary, path)


def toml_value(value):
    """A config value as TOML: strings, booleans, numbers and integer tuples."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value(part) for part in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def format_value(value):
    if isinstance(value, tuple):
        return ",".join(str(part) for part in value)
    return value


def read_curve(project_dir, trial):
    path = os.path.join(project_dir, f"trial_{trial.trial_id}", CURVE)
    if not os.path.exists(path):
        return {"val_loss": [], "val_accuracy": [], "pruned_at": None}
    with open(path) as file:
        return json.load(file)


def write_json(path, value):
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        json.dump(value, file, indent=2)
        file.write("\n")
    os.replace(temporary, path)


def nan_last(value):
    return math.inf if math.isnan(value) else value


def last_line(error):
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__
