"""The folder of one run: its config, checkpoints, model, logs and reports.

A run folder is created only once the data has loaded, so a run that failed on
bad input leaves nothing behind. Rerunning the same command in the same folder
resumes an interrupted run; a different config there is refused rather than
mixed in; nothing in a folder is deleted.
"""

import json
import os

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
MODEL = "model.keras"
PREPROCESSOR = "preprocessor.joblib"
CLASSES = "classes.json"
# The search state of `--tune`, which then trains its best config in the same folder.
TUNING = "tuning"
REPORT = "report.html"
TRIALS = "tuning/trials.csv"


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

    def check_config(self, config):
        """Checks that `config` may train in this folder, writing nothing.

        Raises:
            UsageError: if the folder holds a run with a different config, or is
                a file or a non-empty folder of something else.
        """
        if os.path.isfile(self.path):
            raise UsageError(f"--output-dir {self.path} is a file. Pass a folder path.")
        if not self.exists(CONFIG):
            if os.path.isdir(self.path) and set(os.listdir(self.path)) - {TUNING}:
                raise UsageError(
                    f"--output-dir {self.path} is a non-empty folder without a kerastrain run. "
                    "Pass a new or empty folder."
                )
            return
        try:
            with open(self.file(CONFIG)) as file:
                stored = json.load(file)
        except (OSError, json.JSONDecodeError):
            raise UsageError(
                f"--output-dir {self.path} has an unreadable {CONFIG}. Pass another folder."
            ) from None
        wanted = config.compared_items()
        stored = {name: value for name, value in stored.get("config", stored).items() if name in wanted}
        differences = [name for name in sorted(wanted) if stored.get(name) != wanted[name]]
        if differences:
            name = differences[0]
            raise UsageError(
                f"--output-dir {self.path} holds a run with a different config "
                f"({name}: {stored.get(name)!r} there, {wanted[name]!r} now"
                f"{f', and {len(differences) - 1} more' if len(differences) > 1 else ''}). "
                "Pass a new --output-dir, or the same settings to resume that run."
            )

    def create(self, config, environment=None):
        """Creates the folder and writes the resolved config into it."""
        os.makedirs(os.path.dirname(self.file(BEST_WEIGHTS)), exist_ok=True)
        if not self.exists(CONFIG):
            self.write_json(CONFIG, {"config": config.to_dict(), "environment": environment or {}})

    def write_text(self, name, text):
        temporary = self.file(name + ".tmp")
        with open(temporary, "w") as file:
            file.write(text)
        os.replace(temporary, self.file(name))

    def write_json(self, name, value):
        self.write_text(name, json.dumps(value, indent=2, sort_keys=False) + "\n")

    def read_json(self, name):
        with open(self.file(name)) as file:
            return json.load(file)

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
        """A CSV log of the run, the last row of each `keys` kept (a resumed epoch's), sorted by them."""
        try:
            table = pd.read_csv(self.file(name))
        except (FileNotFoundError, pd.errors.EmptyDataError):  # Not written, or killed before its first line.
            return pd.DataFrame({key: [] for key in keys})
        return table.drop_duplicates(keys, keep="last").sort_values(keys).reset_index(drop=True)
