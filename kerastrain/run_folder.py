"""The folder of one run: its config, data fingerprint, checkpoints, model, logs and reports.

A run folder is created only once the data has loaded and the preprocessor is
fitted, so a run that failed on bad input leaves nothing behind. Rerunning the
same command in the same folder resumes an interrupted run; a different config,
or other data, there is refused rather than mixed in; nothing in a folder is
deleted.
"""

import hashlib
import json
import os
import re

import joblib
import numpy as np
import pandas as pd

from kerastrain.errors import UsageError

CONFIG = "config.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
# Each worker's steps and examples per epoch, in a cluster run (see `callbacks.WorkerThroughput`).
WORKERS = "workers.csv"
# The classic HDF5 weights format: tf-keras' newer `.weights.h5` also stores
# metric variables and cannot load them back under MirroredStrategy.
BEST_WEIGHTS = "checkpoints/best.h5"
# TensorFlow checkpoints of every epoch, written only for a job's evaluator task.
EPOCH_CHECKPOINTS = "checkpoints/epochs"
# What the evaluator task writes: one row per evaluated epoch checkpoint.
EVALUATOR_METRICS = "evaluator/metrics.csv"
BACKUP = "backup"
# The refit's resume point, beside the first training's (`backup/chief`).
REFIT_BACKUP = "backup/refit"
# The first training's summary, once it has finished, so that an interrupted refit does not train it again.
FIRST_TRAINING = "checkpoints/first_training.json"
MODEL = "model.keras"
PREPROCESSOR = "preprocessor.joblib"
CLASSES = "classes.json"
# The search state of `--tune`, which then trains its best config in the same folder.
TUNING = "tuning"
REPORT = "report.html"
TRIALS = "tuning/trials.csv"
# Where runs go when no --output-dir is given (see `default_path`).
RUNS = "runs"


def fingerprint_examples(examples):
    """A SHA-256 digest of labelled examples: their inputs, labels and feature names, in order.

    Args:
        examples: a `kerastrain.data.Examples`.

    Returns:
        A hexadecimal string.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(examples.feature_names).encode())
    if examples.is_text:
        for text in examples.inputs:
            encoded = str(text).encode("utf-8", errors="surrogatepass")
            digest.update(len(encoded).to_bytes(8, "little") + encoded)
    else:
        array = np.ascontiguousarray(examples.inputs)
        digest.update(f"{array.dtype.str}{array.shape}".encode() + array.tobytes())
    for label in examples.labels:
        encoded = str(label).encode("utf-8", errors="surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little") + encoded)
    return digest.hexdigest()


def describe_data(examples):
    """What `config.json` records of a run's data: its source, size and fingerprint."""
    return {"source": examples.source, "examples": len(examples), "fingerprint": fingerprint_examples(examples)}


def default_path(recipe_name, config, data_fingerprint=None):
    """The run folder of a config that names none: `runs/RECIPE-DATA`, plus a digest of the rest.

    The digest covers every setting that decides the run (see
    `TrainingConfig.compared_items`) and differs from the recipe's defaults,
    the path of a data file, and the fingerprint of data given in memory; the
    same command therefore always finds the same folder, and runs that differ
    get folders of their own.

    Args:
        recipe_name: the recipe's name, such as `"textcnn"`.
        config: the run's config.
        data_fingerprint: for examples given in memory, their
            `fingerprint_examples`. Defaults to `None`.

    Returns:
        A path such as `runs/textcnn-sms` or `runs/textcnn-reviews-3f9a1c`.

    Example:

    ```python
    default_path("mlp", MLPConfig(data="sms", dropout=0.3))  # "runs/mlp-sms-5be0c2"
    ```
    """
    from kerastrain import data as data_lib

    defaults = type(config)().compared_items()
    wanted = config.compared_items()
    differing = {name: value for name, value in wanted.items() if name != "data" and value != defaults.get(name)}
    is_named_dataset = config.data in data_lib.TEXT_DATASETS or config.data in data_lib.NUMERIC_DATASETS
    if not is_named_dataset:
        differing["data"] = config.data
    if data_fingerprint is not None:
        differing["data_fingerprint"] = data_fingerprint
    name = f"{recipe_name}-{data_name(config.data)}"
    if differing:
        name += "-" + hashlib.sha256(json.dumps(differing, sort_keys=True).encode()).hexdigest()[:6]
    return os.path.join(RUNS, name)


def data_name(source):
    """A short folder-name form of `--data`: a dataset name, or a file's name without its extensions."""
    name = os.path.basename(os.path.normpath(str(source))) or "data"
    for suffix in (".gz", ".bz2", ".xz", ".zip", ".csv", ".tsv", ".txt"):
        name = name.removesuffix(suffix)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._-")[:40]
    return name or "data"


def open_finished_run(path):
    """The `RunFolder` at `path`, which must hold a finished run.

    Args:
        path: a run folder, the `--output-dir` of a recipe.

    Returns:
        A `RunFolder`.

    Raises:
        UsageError: if `path` is not a folder or its run has not finished
            (there is no `metrics.json`).
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{path} is a file, not a run folder. Pass the --output-dir of a finished kerastrain run.")
    if not os.path.isdir(path):
        raise UsageError(
            f"run folder {path} does not exist. Pass the --output-dir of a finished kerastrain run."
        )
    run = RunFolder(path)
    if not run.finished:
        raise UsageError(
            f"{path} holds no finished run ({METRICS} is missing). Pass the --output-dir of a finished "
            "run, or rerun that run's training command to finish it."
        )
    return run


class RunFolder:
    """Paths and atomic writes in one run folder.

    Args:
        path: the folder.
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def file(self, name):
        return os.path.join(self.path, name)

    def exists(self, name):
        return os.path.exists(self.file(name))

    @property
    def finished(self):
        return self.exists(METRICS)

    def check_config(self, config, recipe_name=None):
        """Checks that `config` may train in this folder, writing nothing.

        Args:
            config: the run's config.
            recipe_name: the recipe's name, checked against the folder's when
                given. Defaults to `None`.

        Raises:
            UsageError: if the folder holds a run of another recipe or with a
                different config, or is a file or a non-empty folder of
                something else.
        """
        if os.path.isfile(self.path):
            raise UsageError(f"--output-dir {self.path} is a file. Pass a folder path.")
        enclosing = enclosing_run_folder(self.path)
        if enclosing is not None:
            raise UsageError(
                f"--output-dir {self.path} is inside the run folder {enclosing}, whose files it would mix with. "
                "Pass a folder outside it."
            )
        stored = self.stored_config()
        if stored is None:
            if os.path.isdir(self.path) and set(os.listdir(self.path)) - {TUNING}:
                raise UsageError(
                    f"--output-dir {self.path} is a non-empty folder without a kerastrain run. "
                    "Pass a new or empty folder."
                )
            return
        if recipe_name is not None and stored.get("recipe", recipe_name) != recipe_name:
            raise UsageError(
                f"--output-dir {self.path} holds a run of the {stored['recipe']} recipe, not {recipe_name}. "
                "Pass a new --output-dir."
            )
        wanted = config.compared_items()
        values = {name: value for name, value in stored.get("config", stored).items() if name in wanted}
        differences = [name for name in sorted(wanted) if values.get(name) != wanted[name]]
        unknown_then = [name for name in differences if name not in values]
        if unknown_then and len(unknown_then) == len(differences) and values:
            flag = "--" + unknown_then[0].replace("_", "-")
            raise UsageError(
                f"--output-dir {self.path} holds a run of an earlier kerastrain, which had no {flag} setting, "
                "so it cannot resume with this one. Pass a new --output-dir (the finished runs there still "
                "predict and report)."
            )
        if differences:
            name = differences[0]
            raise UsageError(
                f"--output-dir {self.path} holds a run with a different config "
                f"({name}: {values.get(name)!r} there, {wanted[name]!r} now"
                f"{f', and {len(differences) - 1} more' if len(differences) > 1 else ''}). "
                "Pass a new --output-dir, or the same settings to resume that run."
            )

    def check_resumable(self, recipe_name, config, data_record):
        """Checks that this folder is new, or holds this same run on this same data, writing nothing.

        A run folder records a fingerprint of the examples it was trained on
        and of its fitted preprocessor. Resuming on other data would mix
        weights learnt on other token ids, and history, curves and report of
        two datasets, so it is refused.

        Args:
            recipe_name: the recipe's name.
            config: the run's config.
            data_record: `describe_data` of the examples loaded now.

        Raises:
            UsageError: as `check_config` does; if the folder's run was
                trained on other data; or if its `preprocessor.joblib` is not
                the one the run was trained with.
        """
        self.check_config(config, recipe_name)
        stored = self.stored_config()
        if stored is None:
            return
        then = stored.get("data", {})
        if then.get("fingerprint") not in (None, data_record["fingerprint"]):
            size_then = f"{then['examples']:,}" if isinstance(then.get("examples"), int) else "other"
            raise UsageError(
                f"--output-dir {self.path} holds a run trained on other data: --data {config.data} now has "
                f"{data_record['examples']:,} examples ({size_then} then) with other content. "
                "Pass a new --output-dir to train on the data as it is, or restore the data to resume that run."
            )
        recorded = stored.get("preprocessor", {}).get("fingerprint")
        if recorded is not None and self.exists(PREPROCESSOR) and file_digest(self.file(PREPROCESSOR)) != recorded:
            raise UsageError(
                f"{self.file(PREPROCESSOR)} is not the preprocessor this run was trained with (it was "
                "replaced). Restore it, or pass a new --output-dir."
            )

    def stored_config(self):
        """The folder's `config.json` as a dict, or `None` when it has none.

        Raises:
            UsageError: if it cannot be read.
        """
        if not self.exists(CONFIG):
            return None
        try:
            with open(self.file(CONFIG)) as file:
                stored = json.load(file)
        except (OSError, ValueError):
            stored = None
        if not isinstance(stored, dict):
            raise UsageError(
                f"--output-dir {self.path} has an unreadable {CONFIG}. Pass another folder."
            ) from None
        return stored

    def create(self, recipe_name, config, environment, data_record, preprocessor, class_names):
        """Creates the folder and writes what a run starts with, once.

        Writes `config.json` (the recipe, the resolved config, the data's and
        the preprocessor's fingerprints and the environment), then
        `preprocessor.joblib` and `classes.json`, which a job's evaluator task
        reads while the chief trains. A resumed run's files are left as they
        are.

        Args:
            recipe_name: the recipe's name.
            config: the run's config.
            environment: the dict of `training.describe_environment`.
            data_record: `describe_data` of the run's examples.
            preprocessor: the fitted preprocessor.
            class_names: the class names, in output order.
        """
        os.makedirs(os.path.dirname(self.file(BEST_WEIGHTS)), exist_ok=True)
        stored = self.stored_config()
        if stored is not None and self.exists(PREPROCESSOR):
            return  # a resumed run: its config.json and preprocessor stay as they are
        temporary = self.file(PREPROCESSOR + ".tmp")
        joblib.dump(preprocessor, temporary)
        record = stored or {
            "recipe": recipe_name,
            "config": config.to_dict(),
            "data": data_record,
            "environment": environment or {},
        }
        # A run stopped between its config.json and its preprocessor gets the new one's fingerprint.
        record["preprocessor"] = {"fingerprint": file_digest(temporary), "description": preprocessor.describe()}
        self.write_json(CONFIG, record)
        os.replace(temporary, self.file(PREPROCESSOR))
        self.write_json(CLASSES, list(class_names))

    def replace_preprocessor(self, preprocessor):
        """Writes `preprocessor` in place of the folder's, and its fingerprint into `config.json`.

        A refitted model (`--refit`) was fitted with a preprocessor of its own,
        on the training and validation splits; the run folder keeps the one
        that matches `model.keras`.
        """
        temporary = self.file(PREPROCESSOR + ".tmp")
        joblib.dump(preprocessor, temporary)
        record = self.stored_config()
        record["preprocessor"] = {
            "fingerprint": file_digest(temporary),
            "description": preprocessor.describe(),
            "refit": True,
        }
        self.write_json(CONFIG, record)
        os.replace(temporary, self.file(PREPROCESSOR))

    def load_preprocessor(self):
        """The folder's fitted preprocessor (see `kerastrain.recipe`).

        A scikit-learn `StandardScaler`, as run folders of kerastrain 0.1
        saved for numeric features, is wrapped in a `FeatureScaler`.
        """
        from sklearn import preprocessing

        from kerastrain.feature_scaling import FeatureScaler

        preprocessor = joblib.load(self.file(PREPROCESSOR))
        if isinstance(preprocessor, preprocessing.StandardScaler):
            preprocessor = FeatureScaler.from_standard_scaler(preprocessor)
        return preprocessor

    def write_text(self, name, text):
        temporary = self.file(name + ".tmp")
        with open(temporary, "w") as file:
            file.write(text)
        os.replace(temporary, self.file(name))

    def write_json(self, name, value):
        self.write_text(name, json.dumps(value, indent=2, sort_keys=False) + "\n")

    def read_json(self, name):
        """One of the run's JSON files: a list for `classes.json`, an object for the others.

        Raises:
            FileNotFoundError: if the file is missing.
            UsageError: if it is damaged: not UTF-8 JSON, or not of that shape.
        """
        with open(self.file(name), "rb") as file:
            content = file.read()
        try:
            value = json.loads(content)
        except ValueError as error:  # UnicodeDecodeError is one too
            raise self.damaged(name, error) from None
        expected = list if name == CLASSES else dict
        if not isinstance(value, expected):
            shape = "a list" if expected is list else "an object"
            raise self.damaged(name, f"a JSON {type(value).__name__}, not {shape}")
        return value

    def damaged(self, name, reason):
        """The `UsageError` for a run file that cannot be read."""
        reason = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
        return UsageError(
            f"{self.file(name)} is damaged ({reason}). Train the run again, or pass another run folder."
        )

    def save_figure(self, name, figure):
        temporary = self.file(name + ".tmp.png")
        figure.savefig(temporary, dpi=110)
        os.replace(temporary, self.file(name))

    def read_history(self):
        """The epochs logged so far, one row each (a resumed epoch's last log wins)."""
        return self.read_epoch_table(HISTORY, ["epoch"])

    def read_workers(self):
        """Each worker's share of each epoch, one row per epoch and worker, as `workers.csv` has them.

        Returns:
            A `pandas.DataFrame` with the columns `epoch`, `worker`, `steps`,
            `examples`, `examples_per_second` and `source`; empty for a run
            in one process, or one trained before kerastrain wrote the file.
        """
        return self.read_epoch_table(WORKERS, ["epoch", "worker"])

    def read_epoch_table(self, name, keys):
        """A CSV log of the run, the last row of each `keys` kept (a resumed epoch's), sorted by them.

        Epochs count from 1. Run folders written by kerastrain 0.1 counted
        them from 0 (their first epoch is 0); they are renumbered on reading.
        """
        try:
            table = pd.read_csv(self.file(name))
        except (FileNotFoundError, pd.errors.EmptyDataError):  # Not written, or killed before its first line.
            return pd.DataFrame({key: [] for key in keys})
        except (UnicodeDecodeError, pd.errors.ParserError) as error:
            raise self.damaged(name, error) from None
        missing = [key for key in keys if key not in table]
        if missing:
            raise self.damaged(name, f"no {missing[0]!r} column")
        if "epoch" in table and len(table) and table["epoch"].min() == 0:
            table["epoch"] = table["epoch"] + 1
        return table.drop_duplicates(keys, keep="last").sort_values(keys).reset_index(drop=True)


def enclosing_run_folder(path):
    """The nearest folder above `path` that holds a kerastrain run's `config.json`, or `None`."""
    folder = os.path.abspath(path)
    while True:
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
        try:
            with open(os.path.join(folder, CONFIG)) as file:
                stored = json.load(file)
        except (OSError, ValueError):
            continue
        if isinstance(stored, dict) and isinstance(stored.get("config"), dict):
            return folder


def file_digest(path):
    """The SHA-256 digest of a file's bytes, as a hexadecimal string."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Run:
    """A finished run: its folder, metrics, history and model.

    `kerastrain.train` returns one; `Run(path)` opens a run trained earlier.

    Args:
        path: the run folder.

    Raises:
        UsageError: if `path` does not hold a finished run.

    Example:

    ```python
    run = kerastrain.Run("runs/textcnn-sms")
    run.metrics["test"]["accuracy"]
    run.history[["epoch", "val_loss"]]
    run.predictor().predict(["WINNER! Claim your prize"])
    ```
    """

    def __init__(self, path):
        self.folder = open_finished_run(path)

    @property
    def path(self):
        """The run folder's path."""
        return self.folder.path

    @property
    def metrics(self):
        """The contents of `metrics.json`: `test`, `validation`, `baseline`, throughput."""
        return self.folder.read_json(METRICS)

    @property
    def config(self):
        """The resolved config the run trained with, as a dict."""
        return self.folder.read_json(CONFIG)["config"]

    @property
    def recipe(self):
        """The name of the recipe the run trained."""
        return self.folder.read_json(CONFIG).get("recipe")

    @property
    def class_names(self):
        """The class names, in the model's output order."""
        return self.folder.read_json(CLASSES)

    @property
    def history(self):
        """One row per epoch (from 1): losses, accuracies, seconds and examples per second, as a DataFrame."""
        return self.folder.read_history()

    @property
    def report_path(self):
        """The path of `report.html`."""
        return self.folder.file(REPORT)

    def predictor(self):
        """The trained model with its preprocessor, for predictions on raw inputs.

        Returns:
            A `kerastrain.export.predict.Predictor`.
        """
        from kerastrain.export.predict import Predictor

        return Predictor.load(self.path)

    def __repr__(self):
        test = self.metrics.get("test", {})
        return f"Run({self.path!r}, test accuracy {test.get('accuracy', float('nan')):.4f})"
