"""Multi-process TF_CONFIG jobs on localhost: real gRPC servers in separate processes."""

import json
import re
import signal
import socket
import subprocess
import sys
import time

import pandas as pd

from conftest import REPO, TINY_TEXTCNN, environment_without_tf_config, error_lines, run_module
from kerastrain.cluster import free_port


def test_launcher_runs_a_parameter_server_job_and_stops_every_task(tmp_path, sms_sample_csv):
    run_dir = tmp_path / "job"
    command = [
        sys.executable, "cluster/launch_local.py", "--workers", "2", "--ps", "1", "--",
        sys.executable, "-m", "kerastrain.recipes.textcnn", "--strategy", "parameter_server",
        "--data", str(sms_sample_csv), "--epochs", "2", *TINY_TEXTCNN,
         "--learning-rate", "0.01", "--batch-size", "32",
        "--output-dir", str(run_dir),
    ]  # fmt: skip
    environment = environment_without_tf_config()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=400, env=environment)
    assert result.returncode == 0, result.stdout[-3000:]
    output = result.stdout
    for task in ("worker 0", "worker 1", "ps 0"):
        assert f"[{task}] kerastrain: {task} serving on localhost:" in output
    assert "[chief] kerastrain: test accuracy" in output
    assert "[launcher] chief exited with status 0; all tasks stopped" in output
    environment = json.loads((run_dir / "config.json").read_text())["environment"]
    assert environment["cluster"] == {"worker": 2, "ps": 1}
    assert (run_dir / "metrics.json").is_file()


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
    # TensorFlow implements MultiWorkerMirroredStrategy with this class.
    assert environment["strategy"] == "CollectiveAllReduceStrategy" and environment["replicas"] == 2
    assert json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"] > 0.85
    assert list(temporary.iterdir()) == [], "the non-chief worker's temporary run folder is left behind"


def test_parameter_server_training_survives_a_killed_worker_and_its_return(tmp_path, sms_sample_csv):
    spec = {
        "chief": [f"localhost:{free_port()}"],
        "worker": [f"localhost:{free_port()}", f"localhost:{free_port()}"],
        "ps": [f"localhost:{free_port()}"],
    }
    run_dir = tmp_path / "faults"
    epochs = 8
    command = [
        sys.executable, "-m", "kerastrain.recipes.textcnn", "--strategy", "parameter_server",
        "--data", str(sms_sample_csv), "--epochs", str(epochs), "--early-stopping-patience", "0",
        *TINY_TEXTCNN, "--learning-rate", "0.01",
        "--batch-size", "16", "--verbose", "2", "--output-dir", str(run_dir),
    ]  # fmt: skip
    base = environment_without_tf_config()

    def start(task_type, index, log_name):
        environment = dict(base, TF_CONFIG=json.dumps({"cluster": spec, "task": {"type": task_type, "index": index}}))
        log = open(tmp_path / log_name, "w")
        return subprocess.Popen(command, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT)

    def epochs_logged():
        history = run_dir / "history.csv"
        return max(len(history.read_text().splitlines()) - 1, 0) if history.exists() else 0

    def wait_for(condition, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and chief.poll() is None:
            if condition():
                return True
            time.sleep(0.1)
        return False

    servers = [start("ps", 0, "ps0.log"), start("worker", 0, "worker0.log"), start("worker", 1, "worker1.log")]
    chief = start("chief", 0, "chief.log")
    try:
        assert wait_for(lambda: epochs_logged() >= 1, 240), "the chief did not finish a first epoch"
        servers[2].send_signal(signal.SIGKILL)
        servers[2].wait()
        killed_at = epochs_logged()
        assert wait_for(lambda: epochs_logged() >= killed_at + 1, 240), "training stopped with a worker gone"
        servers[2] = start("worker", 1, "worker1_again.log")
        assert chief.wait(timeout=300) == 0, (tmp_path / "chief.log").read_text()[-3000:]
    finally:
        for process in [chief, *servers]:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert killed_at < epochs, "the worker was killed after training ended"
    chief_log = (tmp_path / "chief.log").read_text()
    assert "Worker /job:worker/replica:0/task:1 failed" in chief_log
    assert "kerastrain: worker 1 serving on" in (tmp_path / "worker1_again.log").read_text()
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == list(range(epochs))
    assert json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"] > 0.85
