"""Multi-process TF_CONFIG jobs on localhost: real gRPC servers in separate processes."""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import REPO, SERVERS, TINY_TEXTCNN, environment_without_tf_config, error_lines, run_module
from kerastrain.distribute.cluster import free_port
from kerastrain.run_folder import RunFolder

pytestmark = [pytest.mark.slow, SERVERS]


def test_launcher_runs_a_parameter_server_job_with_a_sidecar_evaluator(tmp_path, sms_sample_csv):
    run_dir = tmp_path / "job"
    epochs = 2
    command = [
        sys.executable, "cluster/launch_local.py", "--workers", "2", "--ps", "1", "--evaluator", "--",
        sys.executable, "-m", "kerastrain.recipes.textcnn", "--strategy", "parameter_server",
        "--data", str(sms_sample_csv), "--epochs", str(epochs), *TINY_TEXTCNN,
         "--learning-rate", "0.01", "--batch-size", "32", "--evaluator-timeout", "300",
        "--output-dir", str(run_dir),
    ]  # fmt: skip
    environment = environment_without_tf_config()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=400, env=environment)
    assert result.returncode == 0, result.stdout[-3000:]
    output = result.stdout
    for task in ("worker 0", "worker 1", "ps 0"):
        assert f"[{task}] kerastrain: {task} serving on localhost:" in output
    assert "[chief] kerastrain: test accuracy" in output
    assert "[evaluator] kerastrain: evaluator: the chief's run is finished" in output
    assert "[evaluator] kerastrain: test accuracy" not in output  # it trains nothing
    assert "[launcher] evaluator exited with status 0" in output
    assert "[launcher] chief exited with status 0; all tasks stopped" in output
    environment = json.loads((run_dir / "config.json").read_text())["environment"]
    assert environment["cluster"] == {"worker": 2, "ps": 1}  # the evaluator is no worker
    assert (run_dir / "metrics.json").is_file()
    # One row per epoch, each from the chief's checkpoint of that epoch: the
    # evaluator's exact pass over the validation split agrees with the chief's
    # validation, which under parameter servers runs ceil(80 / 32) = 3 batches of
    # a repeated dataset and so counts 16 of the 80 examples twice.
    evaluated = pd.read_csv(run_dir / "evaluator" / "metrics.csv")
    history = pd.read_csv(run_dir / "history.csv")
    assert list(evaluated["epoch"]) == list(range(1, epochs + 1)) == list(history["epoch"])
    for row in evaluated.itertuples():
        assert f"[evaluator] kerastrain: evaluator: epoch {row.epoch}: val_loss {row.val_loss:.4f}" in output
    assert (evaluated["val_accuracy"] - history["val_accuracy"]).abs().max() <= 0.05, (evaluated, history)
    assert ((evaluated["val_loss"] - history["val_loss"]).abs() / history["val_loss"]).max() <= 0.25
    # The worker processes counted their own steps, which make up every step of each epoch.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    workers = RunFolder(run_dir).read_workers()
    assert sorted(set(workers["worker"])) == [0, 1] and set(workers["source"]) == {"counted"}
    assert workers.groupby("epoch")["steps"].sum().tolist() == [metrics["steps_per_epoch"]] * epochs
    assert (workers.groupby("worker")["steps"].sum() > 0).all()


def test_a_server_task_whose_port_is_taken_exits_with_one_line():
    with socket.socket() as blocker:
        blocker.bind(("localhost", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        spec = {"chief": ["localhost:1"], "worker": [f"localhost:{port}"], "ps": ["localhost:2"]}
        tf_config = json.dumps({"cluster": spec, "task": {"type": "worker", "index": 0}})
        result = run_module(
            "kerastrain.recipes.textcnn", "--strategy", "parameter_server", timeout=60,
            environment={"TF_CONFIG": tf_config},
        )  # fmt: skip
    assert result.returncode == 2
    assert error_lines(result)[-1] == (
        f"error: TF_CONFIG worker 0 cannot listen on localhost:{port} (Could not start gRPC server); "
        "is the port in use? Pick a free port."
    )


@pytest.mark.slow
def test_a_chief_whose_workers_and_ps_are_not_up_names_them_and_exits_138(tmp_path, sms_sample_csv):
    spec = {
        "chief": [f"localhost:{free_port()}"],
        "worker": [f"localhost:{free_port()}"],
        "ps": [f"localhost:{free_port()}"],
        "evaluator": [f"localhost:{free_port()}"],  # serves nothing, so it is not waited for
    }
    tf_config = json.dumps({"cluster": spec, "task": {"type": "chief", "index": 0}})
    result = run_module(
        "kerastrain.recipes.textcnn", "--strategy", "parameter_server", "--data", sms_sample_csv, *TINY_TEXTCNN,
        "--epochs", "1", "--cluster-timeout", "12", "--output-dir", tmp_path / "run", timeout=300,
        environment={"TF_CONFIG": tf_config},
    )  # fmt: skip
    absent = f"worker 0 ({spec['worker'][0]}), ps 0 ({spec['ps'][0]})"
    assert result.returncode == 138, result.stderr[-3000:]
    waiting = [line for line in result.stdout.splitlines() if "waiting for" in line]
    assert waiting and all(line.startswith(f"kerastrain: chief: waiting for {absent} to accept connections") for line in waiting)
    assert error_lines(result)[-1].startswith(
        f"error: TF_CONFIG's {absent} accepted no connection within --cluster-timeout 12 s."
    )
    # A usage error is still exit status 2, before any waiting.
    without_ps = json.dumps({"cluster": {"chief": spec["chief"], "worker": spec["worker"]}, "task": {"type": "chief", "index": 0}})
    result = run_module(
        "kerastrain.recipes.textcnn", "--strategy", "parameter_server", "--output-dir", tmp_path / "run2",
        timeout=120, environment={"TF_CONFIG": without_ps},
    )  # fmt: skip
    assert result.returncode == 2 and 'has no "ps" tasks' in error_lines(result)[-1]


def test_multi_worker_mirrored_job_of_two_processes_writes_only_from_the_chief(tmp_path, sms_sample_csv):
    run_dir = tmp_path / "mwms"
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    command = [
        sys.executable, "cluster/launch_local.py", "--workers", "2", "--ps", "0", "--no-chief", "--",
        sys.executable, "-m", "kerastrain.recipes.textcnn", "--strategy", "multi_worker_mirrored",
        "--data", str(sms_sample_csv), "--epochs", "2", *TINY_TEXTCNN,
         "--learning-rate", "0.01", "--batch-size", "32",
        "--output-dir", str(run_dir),
    ]  # fmt: skip
    environment = environment_without_tf_config(TMPDIR=str(temporary))
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=400, env=environment)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "[worker 0] kerastrain: test accuracy" in result.stdout
    assert "[worker 1] kerastrain: test accuracy" not in result.stdout
    # The other worker logs one line per epoch, no progress bar.
    assert any(re.match(r"\[worker 1\] \d+/\d+ - \d+s - loss: ", line) for line in result.stdout.splitlines())
    environment = json.loads((run_dir / "config.json").read_text())["environment"]
    assert environment["strategy"] == "multi_worker_mirrored" and environment["replicas"] == 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.85
    assert list(temporary.iterdir()) == [], "the non-chief worker's temporary run folder is left behind"
    # Both workers run every step, each on half of every batch: derived, not counted.
    workers = RunFolder(run_dir).read_workers()
    assert set(workers["source"]) == {"derived"} and sorted(set(workers["worker"])) == [0, 1]
    assert (workers["steps"] == metrics["steps_per_epoch"]).all()
    assert workers.groupby("epoch")["examples"].sum().tolist() == [metrics["train_examples"]] * 2
    assert "derived from the chief&#x27;s timing" in (run_dir / "report.html").read_text()


class ParameterServerJob:
    """A TF_CONFIG parameter-server job whose tasks a test starts and kills one by one.

    Every task runs the same recipe command with its own TF_CONFIG, on free
    localhost ports, and logs into its own file under `folder`.
    """

    def __init__(self, folder, command, workers):
        self.folder = folder
        self.command = command
        self.spec = {
            "chief": [f"localhost:{free_port()}"],
            "worker": [f"localhost:{free_port()}" for _ in range(workers)],
            "ps": [f"localhost:{free_port()}"],
        }
        self.processes = []

    def start(self, task_type, index, log_name):
        task = {"cluster": self.spec, "task": {"type": task_type, "index": index}}
        environment = environment_without_tf_config(TF_CONFIG=json.dumps(task))
        with open(self.folder / log_name, "w") as log:
            process = subprocess.Popen(self.command, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def log(self, log_name):
        return (self.folder / log_name).read_text()

    def stop_all(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def epochs_logged(run_dir):
    history = run_dir / "history.csv"
    return max(len(history.read_text().splitlines()) - 1, 0) if history.exists() else 0


def wait_for(condition, seconds, process):
    """Waits until `condition()` holds; False if `seconds` pass or `process` ends first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.1)
    return False


def cpu_seconds(process):
    """CPU time a running process has used so far, from Linux's /proc/PID/stat."""
    fields = pathlib.Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, in ticks


def parameter_server_command(sms_sample_csv, run_dir, epochs):
    return [
        sys.executable, "-m", "kerastrain.recipes.textcnn", "--strategy", "parameter_server",
        "--data", str(sms_sample_csv), "--epochs", str(epochs), "--early-stopping-patience", "0",
        *TINY_TEXTCNN, "--learning-rate", "0.01",
        "--batch-size", "16", "--verbose", "2", "--output-dir", str(run_dir),
    ]  # fmt: skip


@pytest.mark.skipif(not pathlib.Path("/proc/self/stat").exists(), reason="reads CPU times from Linux's /proc")
def test_parameter_server_training_survives_a_killed_worker_whose_return_gets_work(tmp_path, sms_sample_csv):
    run_dir = tmp_path / "faults"
    # Enough epochs that training goes on for a while after the returned worker
    # has started (TensorFlow takes seconds to import).
    epochs = 30
    job = ParameterServerJob(tmp_path, parameter_server_command(sms_sample_csv, run_dir, epochs), workers=2)
    ps = job.start("ps", 0, "ps0.log")
    surviving_worker = job.start("worker", 0, "worker0.log")
    killed_worker = job.start("worker", 1, "worker1.log")
    chief = job.start("chief", 0, "chief.log")
    try:
        assert wait_for(lambda: epochs_logged(run_dir) >= 1, 240, chief), "the chief did not finish a first epoch"
        killed_worker.send_signal(signal.SIGKILL)
        killed_worker.wait()
        killed_at = epochs_logged(run_dir)
        assert wait_for(lambda: epochs_logged(run_dir) >= killed_at + 1, 240, chief), "training stopped with a worker gone"
        returned_worker = job.start("worker", 1, "worker1_again.log")
        assert wait_for(lambda: "serving on" in job.log("worker1_again.log"), 120, chief), "training ended first"
        served_at = epochs_logged(run_dir)
        cpu_before = {"surviving": cpu_seconds(surviving_worker), "returned": cpu_seconds(returned_worker)}
        assert chief.wait(timeout=300) == 0, job.log("chief.log")[-3000:]
        # The workers stay up (idle) after the chief ends, so their CPU times can still be read.
        cpu_used = {
            "surviving": cpu_seconds(surviving_worker) - cpu_before["surviving"],
            "returned": cpu_seconds(returned_worker) - cpu_before["returned"],
        }
        assert ps.poll() is None
        print(f"CPU seconds of the workers while the returned one was up: {cpu_used}")  # shown with -s
    finally:
        job.stop_all()
    assert served_at < epochs - 5, f"the returned worker came up at epoch {served_at} of {epochs}: nothing left to test"
    assert "Worker /job:worker/replica:0/task:1 failed" in job.log("chief.log")
    # An idle server uses next to no CPU. The returned worker ran training steps
    # alongside the surviving one; it had to be reconnected first, so it did less.
    assert cpu_used["surviving"] > 0.5, cpu_used
    assert cpu_used["returned"] > 0.25 * cpu_used["surviving"], cpu_used
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == list(range(1, epochs + 1))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.85
    # Worker 1's count is blank while it is away (and for the epoch after, when it
    # counts from zero again); every other epoch's counts add up to its steps, and
    # the returned worker counts steps again.
    steps = RunFolder(run_dir).read_workers().pivot(index="epoch", columns="worker", values="steps")
    away = steps[1].isna()
    assert away.any() and not steps[0].isna().any()
    assert (steps[~away].sum(axis=1) == metrics["steps_per_epoch"]).all()
    assert steps[1].loc[served_at + 1 :].sum() > 0, steps[1].tolist()  # epochs count from 1


def test_a_killed_parameter_server_chief_rerun_against_the_same_servers_resumes(tmp_path, sms_sample_csv):
    run_dir = tmp_path / "chief_fault"
    epochs = 5
    job = ParameterServerJob(tmp_path, parameter_server_command(sms_sample_csv, run_dir, epochs), workers=1)
    servers = [job.start("ps", 0, "ps0.log"), job.start("worker", 0, "worker0.log")]
    chief = job.start("chief", 0, "chief.log")
    try:
        assert wait_for(lambda: epochs_logged(run_dir) >= 2, 240, chief), "the chief did not finish two epochs"
        chief.send_signal(signal.SIGKILL)
        chief.wait()
        epochs_before_kill = epochs_logged(run_dir)
        assert epochs_before_kill < epochs and not (run_dir / "metrics.json").exists()
        assert all(server.poll() is None for server in servers), "a server task ended with its chief"
        # The same command and TF_CONFIG, against the same still-running server processes.
        rerun = job.start("chief", 0, "chief_again.log")
        assert rerun.wait(timeout=300) == 0, job.log("chief_again.log")[-3000:]
        assert all(server.poll() is None for server in servers)
    finally:
        job.stop_all()
    # The backup is taken after the epoch's log line, so a chief killed between
    # the two runs that epoch again; its earlier row is dropped, so every epoch
    # is logged once.
    assert list(pd.read_csv(run_dir / "history.csv")["epoch"]) == list(range(1, epochs + 1))
    resumed_from = int(re.search(r"Epoch (\d+)/", job.log("chief_again.log")).group(1)) - 1
    assert epochs_before_kill - 1 <= resumed_from <= epochs_before_kill
    assert "Epoch 1/" not in job.log("chief_again.log")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == epochs and metrics["test"]["accuracy"] > 0.9
    # The rerun chief counts on the same worker process afresh: every epoch once, each complete.
    workers = pd.read_csv(run_dir / "workers.csv")
    assert sorted(workers["epoch"]) == list(range(1, epochs + 1))
    assert (workers["steps"] == metrics["steps_per_epoch"]).all()


@pytest.mark.slow
def test_a_killed_parameter_server_ends_the_chief_with_138_naming_it(tmp_path, sms_sample_csv):
    run_dir = tmp_path / "ps_fault"
    command = parameter_server_command(sms_sample_csv, run_dir, epochs=30) + ["--cluster-timeout", "60"]
    job = ParameterServerJob(tmp_path, command, workers=1)
    ps = job.start("ps", 0, "ps0.log")
    job.start("worker", 0, "worker0.log")
    chief = job.start("chief", 0, "chief.log")
    try:
        assert wait_for(lambda: epochs_logged(run_dir) >= 2, 240, chief), "the chief did not finish two epochs"
        ps.send_signal(signal.SIGKILL)
        ps.wait()
        status = chief.wait(timeout=300)
    finally:
        job.stop_all()
    assert status == 138, job.log("chief.log")[-3000:]
    (error,) = [line for line in job.log("chief.log").splitlines() if line.startswith("error: ")]
    assert error.startswith("error: A parameter server was lost during training (UnavailableError: ")
    assert error.endswith("Rerun the same command once the parameter servers are back: it resumes from the last epoch.")
    assert not (run_dir / "metrics.json").exists() and (run_dir / "backup").is_dir()
