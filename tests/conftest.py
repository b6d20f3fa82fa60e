"""Shared fixtures: small real datasets and a runner for the package's commands."""

import gzip
import os
import pathlib
import subprocess
import sys

import pandas as pd
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# Runs that are not about precision train in float32: --precision auto picks
# mixed_bfloat16 on CPUs with bfloat16 units, and their accuracy and their
# predictions' last digits then depend on the machine.
FLOAT32 = ["--precision", "float32"]
# A TextCNN small enough to train in seconds: tests check behaviour, not accuracy.
TINY_TEXTCNN = ["--embedding-dim", "16", "--filters", "8", "--ngram-features", "1000", *FLOAT32]
# The suite runs on two pytest-xdist workers (setup.cfg: -n 2 --dist loadgroup).
# Tests that listen on ports, pick free ones or count on one staying closed
# (tf.distribute servers, local clusters, Jupyter kernels, network namespaces)
# carry this mark: they all run on one worker, one at a time, so no two of them
# ever pick the same port.
SERVERS = pytest.mark.xdist_group("servers")
# The tests marked SERVERS, by test id: whole modules ("file::") or tests (with
# all their parameters). The scheduler below groups them by id, since it sees ids
# and not marks; pytest_collection_modifyitems checks that this list and the
# marks agree.
SERVER_TESTS = (
    "tests/test_cluster.py::",
    "tests/test_cluster_jobs.py::",
    "tests/test_faults.py::",
    "tests/test_network_faults.py::",
    "tests/test_parameter_server_validation.py::",
    "tests/test_worker_steps.py::",
    "tests/test_accumulation.py::test_parameter_server_workers_each_apply_their_accumulated_steps",
    "tests/test_augmentation.py::test_parameter_server_job_trains_with_shifted_images",
    "tests/test_notebooks.py::test_notebook_runs_in_small_data_mode",
    "tests/test_recipes.py::test_killed_run_resumes_from_its_last_epoch",
    "tests/test_recipes.py::test_parameter_server_training_on_an_in_process_cluster",
)


def is_server_test(nodeid):
    """Whether the test of this id is one of SERVER_TESTS (an `@group` suffix aside)."""
    test = nodeid.rsplit("@", 1)[0] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid
    modules = tuple(entry for entry in SERVER_TESTS if entry.endswith("::"))
    return test.startswith(modules) or test.split("[", 1)[0] in SERVER_TESTS


def pytest_collection_modifyitems(config, items):
    """Refuses to run when the SERVERS marks and SERVER_TESTS disagree."""
    disagreeing = [
        item.nodeid
        for item in items
        if any(mark.args[:1] == ("servers",) for mark in item.iter_markers("xdist_group")) != is_server_test(item.nodeid)
    ]
    if disagreeing:
        raise pytest.UsageError(
            "tests marked SERVERS must be listed in conftest.SERVER_TESTS, and only those: " + ", ".join(disagreeing)
        )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Like `--dist loadgroup`, with the SERVERS tests as one unit of work.

    pytest-xdist's own loadgroup groups by a suffix that it adds to test ids, which
    pytest 9.2's ids no longer take; this scheduler finds the group from the id.
    """
    from xdist.scheduler import LoadScopeScheduling

    class ServersInTurn(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return "servers" if is_server_test(nodeid) else nodeid

    return ServersInTurn(config, log)


def environment_without_tf_config(**extra):
    """This process's environment, less a TF_CONFIG that would turn runs into cluster tasks."""
    variables = {name: value for name, value in os.environ.items() if name != "TF_CONFIG"}
    variables.update(extra)
    return variables


def run_script(script, *arguments, timeout=300):
    """Runs a Python script in a fresh process (for one in-process cluster per process).

    Returns:
        The script's last line of standard output; fails the test, with the end of
        its standard error, if it exits with an error.
    """
    result = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, env=environment_without_tf_config(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def run_module(module, *arguments, timeout=300, cwd=None, environment=None):
    """Runs `python -m module arguments...` as a user would; returns the CompletedProcess."""
    variables = environment_without_tf_config(PYTHONUNBUFFERED="1", **(environment or {}))
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env=variables,
    )


def error_lines(result):
    """The lines of stderr that kerastrain itself wrote (not TensorFlow's start-up notes)."""
    return [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith(("WARNING: All log messages", "I0000", "E0000", "W0000"))
    ]


@pytest.fixture(scope="session")
def sms_frame():
    from kerastrain.data import bundled

    examples = bundled.load_sms_spam()
    return pd.DataFrame({"text": examples.inputs, "label": examples.labels})


@pytest.fixture(scope="session")
def sms_sample_csv(tmp_path_factory, sms_frame):
    """800 SMS (stratified) as a plain CSV with the default column names."""
    from sklearn import model_selection

    sample, _ = model_selection.train_test_split(
        sms_frame, train_size=800, stratify=sms_frame["label"], random_state=0
    )
    path = tmp_path_factory.mktemp("data") / "sms_sample.csv"
    sample.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def digits_csv(tmp_path_factory):
    """scikit-learn's digits in the MNIST CSV layout: label,pixel1,...,pixel64."""
    from sklearn import datasets

    digits = datasets.load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"pixel{index + 1}" for index in range(64)])
    frame.insert(0, "label", digits.target)
    path = tmp_path_factory.mktemp("data") / "digits.csv.gz"
    with gzip.open(path, "wt") as file:
        frame.to_csv(file, index=False)
    return path


@pytest.fixture(scope="session")
def finished_textcnn_run(tmp_path_factory, sms_sample_csv):
    """A small TextCNN run trained through the command line, and the arguments that made it."""
    run_dir = tmp_path_factory.mktemp("runs") / "textcnn"
    arguments = [
        "--data", sms_sample_csv, "--epochs", "3", "--embedding-dim", "16", "--filters", "8",
        "--ngram-features", "2000", "--learning-rate", "0.01", "--batch-size", "32", "--verbose", "0",
        *FLOAT32, "--output-dir", run_dir,
    ]  # fmt: skip
    result = run_module("kerastrain.recipes.textcnn", *arguments)
    assert result.returncode == 0, result.stderr
    return run_dir, arguments


# A history.csv of three epochs, as `EpochLog` writes it.
HISTORY_ROWS = {
    "epoch": [1, 2, 3],
    "accuracy": [0.5, 0.7, 0.8],
    "loss": [1.0, 0.6, 0.4],
    "val_accuracy": [0.5, 0.6, 0.7],
    "val_loss": [1.1, 0.8, 0.7],
}


@pytest.fixture(autouse=True)
def default_policy_after_each_test():
    """Keras' global float policy back to float32 after every test that imported Keras.

    A run in this process with `precision="auto"` sets `mixed_bfloat16` on a CPU
    with bfloat16 units; without this, the tests after it would build their
    models in bfloat16 on such machines only.
    """
    yield
    if "tf_keras" in sys.modules:
        sys.modules["tf_keras"].mixed_precision.set_global_policy("float32")


@pytest.fixture
def float32_policy():
    """The float32 policy during the test, and after it."""
    from kerastrain.backend import keras

    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def tiny_model(float32_policy):
    """An uncompiled MLP of 3 features, one hidden layer of 4 units and 2 classes."""
    from kerastrain.models import build_mlp

    return build_mlp(3, 2, hidden_units=(4,))
