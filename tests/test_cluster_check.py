"""`kerastrain cluster check`: what a task of a TF_CONFIG job will do, or one line and exit status 2."""

import argparse
import json
import subprocess
import sys

import pytest

from conftest import REPO, environment_without_tf_config
from kerastrain.distribute import check

EXAMPLES = REPO / "cluster" / "tf_config_examples"
CLUSTER = {
    "chief": ["trainer-chief:2222"],
    "worker": ["trainer-worker-0:2222", "trainer-worker-1:2222"],
    "ps": ["trainer-ps-0:2222"],
}


def run_check(*arguments, tf_config=None):
    environment = environment_without_tf_config(**({"TF_CONFIG": tf_config} if tf_config else {}))
    return subprocess.run(
        [sys.executable, "-m", "kerastrain.distribute.check", *arguments],
        capture_output=True, text=True, timeout=60, cwd=REPO, env=environment,
    )  # fmt: skip


def check_lines(capsys, *arguments):
    parser = argparse.ArgumentParser()
    check.add_arguments(parser)
    assert check.main(parser.parse_args(list(arguments))) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    "example, task, plan",
    [
        ("parameter_server_chief.json", "chief 0 at trainer-chief:2222", "will: train as chief: wait up to --cluster-timeout"),
        ("parameter_server_worker1.json", "worker 1 at trainer-worker-1:2222", "will: serve: start a gRPC server on trainer-worker-1:2222"),
        ("parameter_server_ps0.json", "ps 0 at trainer-ps-0:2222", "will: serve: start a gRPC server on trainer-ps-0:2222"),
        ("parameter_server_evaluator.json", "evaluator 0 at trainer-evaluator:2222", "will: evaluate:"),
        ("tfjob_parameter_server_worker1.json", "worker 1 at trainer-worker-1.default.svc:2222", "will: serve:"),
    ],
)  # fmt: skip
def test_each_task_is_told_its_role_its_cluster_and_what_it_will_do(capsys, example, task, plan):
    lines = check_lines(capsys, "--tf-config", str(EXAMPLES / example))
    assert f"this task: {task}" in lines
    assert any(line.startswith(plan) for line in lines), lines
    if example != "parameter_server_evaluator.json":
        assert "training cluster: 1 chief, 2 workers, 1 ps" in lines
        assert [line.split(":")[0].strip() for line in lines if line.startswith("  ")] == [
            "chief 0", "worker 0", "worker 1", "ps 0"
        ]  # fmt: skip
    else:  # the tutorial's evaluator: its own cluster lists only itself
        assert "training cluster: not in this TF_CONFIG (an evaluator needs none)" in lines


def test_the_evaluator_of_a_tfjob_is_named_but_left_out_of_the_training_cluster(capsys):
    lines = check_lines(capsys, "--tf-config", str(EXAMPLES / "tfjob_parameter_server_worker1.json"))
    assert "evaluator: trainer-evaluator-0.default.svc:2222, left out of the training cluster (it runs no server)" in lines
    assert not any(line.startswith("  evaluator") for line in lines)


def test_a_chief_whose_evaluator_runs_outside_its_cluster_still_keeps_checkpoints_for_it(capsys):
    lines = check_lines(capsys, "--tf-config", str(EXAMPLES / "parameter_server_chief.json"))
    assert any(line.startswith("evaluator: not listed;") and "keeps its last 5 epoch checkpoints" in line for line in lines)


def test_multi_worker_mirrored_workers_train_and_the_first_leads(capsys):
    lines = check_lines(capsys, "--strategy", "multi_worker_mirrored", "--tf-config", str(EXAMPLES / "multi_worker_worker0.json"))
    assert "this task: worker 0 at trainer-worker-0:2222 (the chief)" in lines
    assert any(line.startswith("will: train as chief: all-reduce") for line in lines)
    lines = check_lines(capsys, "--strategy", "multi_worker_mirrored", "--tf-config", str(EXAMPLES / "multi_worker_worker1.json"))
    assert any(line.startswith("will: train: all-reduce") for line in lines)


def test_the_environments_tf_config_is_read_without_tensorflow():
    tf_config = json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": "1"}, "environment": "cloud"})
    script = (
        "import sys, argparse\n"
        "from kerastrain.distribute import check\n"
        "parser = argparse.ArgumentParser(); check.add_arguments(parser)\n"
        "check.main(parser.parse_args([]))\n"
        "print('tensorflow imported:', 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO,
        env=environment_without_tf_config(TF_CONFIG=tf_config),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "this task: worker 1 at trainer-worker-1:2222" in result.stdout
    assert result.stdout.strip().endswith("tensorflow imported: False")


@pytest.mark.parametrize(
    "tf_config, arguments, expected",
    [
        (None, [], "TF_CONFIG is not set"),
        (json.dumps({"cluster": {"master": ["m:1"], "worker": ["w:1"]}, "task": {"type": "master", "index": 0}}), [], '"master"'),
        (json.dumps({"cluster": {"worker": {"1": "w:1"}, "ps": ["p:1"]}, "task": {"type": "worker", "index": 1}}), [], "enableDynamicWorker"),
        (json.dumps({"cluster": {"chief": ["c:1"], "worker": ["w:1"]}, "task": {"type": "chief", "index": 0}}), [], 'no "ps" tasks'),
        (json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}}), [], "index 2 is out of range"),
        (json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 0}}), ["--strategy", "multi_worker_mirrored"], "does not use"),
        (None, ["--tf-config", "no/such/file.json"], "--tf-config no/such/file.json: No such file or directory"),
        (None, ["--strategy", "mirrored"], "invalid choice"),
    ],
)  # fmt: skip
def test_what_the_job_cannot_run_is_one_line_and_exit_status_2(tf_config, arguments, expected):
    result = run_check(*arguments, tf_config=tf_config)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert result.stdout == ""


def test_debug_shows_the_traceback():
    result = run_check("--debug", "--tf-config", "no/such/file.json")
    assert result.returncode != 0 and "Traceback" in result.stderr
