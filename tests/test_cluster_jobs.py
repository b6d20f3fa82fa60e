"""Multi-process TF_CONFIG jobs on localhost: real gRPC servers in separate processes."""

import json
import os
import re
import socket
import subprocess
import sys

from conftest import REPO, error_lines, run_module


def test_launcher_runs_a_parameter_server_job_and_stops_every_task(tmp_path, sms_sample_csv):
    run_dir = tmp_path / "job"
    command = [
        sys.executable, "cluster/launch_local.py", "--workers", "2", "--ps", "1", "--",
        sys.executable, "-m", "kerastrain.recipes.textcnn", "--strategy", "parameter_server",
        "--data", str(sms_sample_csv), "--epochs", "2", "--embedding-dim", "16", "--filters", "8",
        "--ngram-features", "1000", "--learning-rate", "0.01", "--batch-size", "32",
        "--output-dir", str(run_dir),
    ]  # fmt: skip
    environment = {name: value for name, value in os.environ.items() if name != "TF_CONFIG"}
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
        "--data", str(sms_sample_csv), "--epochs", "2", "--embedding-dim", "16", "--filters", "8",
        "--ngram-features", "1000", "--learning-rate", "0.01", "--batch-size", "32",
        "--output-dir", str(run_dir),
    ]  # fmt: skip
    environment = {name: value for name, value in os.environ.items() if name != "TF_CONFIG"}
    environment["TMPDIR"] = str(temporary)
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
