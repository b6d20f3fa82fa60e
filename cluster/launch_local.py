"""Runs one kerastrain job as a chief, workers and parameter servers on this machine.

Each task is its own process with its own TF_CONFIG, on free localhost ports, all
running the same command. Their output is streamed with a task prefix. When the
chief ends (or fails, or you press Ctrl+C) every other task is stopped, and the
launcher exits with the chief's status.

Usage:

    python cluster/launch_local.py --workers 2 --ps 1 -- \\
        python -m kerastrain.recipes.textcnn --strategy parameter_server --epochs 3

    python cluster/launch_local.py --workers 2 --ps 1 --evaluator -- \\
        python -m kerastrain.recipes.textcnn --strategy parameter_server --epochs 3

    python cluster/launch_local.py --workers 2 --ps 0 --no-chief -- \\
        python -m kerastrain.recipes.textcnn --strategy multi_worker_mirrored

With `--evaluator` an evaluator task evaluates the chief's epoch checkpoints as
they appear. When the chief succeeds, the evaluator gets `--evaluator-grace`
seconds to evaluate the last ones before it is stopped too; the launcher then
exits with the evaluator's status if the chief's was 0.

It uses only the standard library, so it can be copied next to any job.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def cluster_spec(workers, ps, chief=True, evaluator=False):
    spec = {}
    if chief:
        spec["chief"] = [f"localhost:{free_port()}"]
    spec["worker"] = [f"localhost:{free_port()}" for _ in range(workers)]
    if ps:
        spec["ps"] = [f"localhost:{free_port()}" for _ in range(ps)]
    if evaluator:
        # TensorFlow wants an address for every task; the evaluator serves nothing on it.
        spec["evaluator"] = [f"localhost:{free_port()}"]
    return spec


def stream(process, prefix):
    for line in process.stdout:
        sys.stdout.write(f"[{prefix}] {line}")
        sys.stdout.flush()


def stop(processes, grace_seconds=10.0):
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_evaluator(process, grace_seconds):
    """Gives the evaluator time to evaluate the last checkpoints; returns its status (0 if stopped)."""
    try:
        status = process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        print(f"[launcher] the evaluator was still running {grace_seconds:g} s after the chief; stopping it", flush=True)
        return 0
    print(f"[launcher] evaluator exited with status {status}", flush=True)
    return status


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="Worker tasks (default: 2).")
    parser.add_argument("--ps", type=int, default=1, help="Parameter-server tasks (default: 1).")
    parser.add_argument(
        "--no-chief", action="store_true", help="No chief task: worker 0 leads (multi_worker_mirrored)."
    )
    parser.add_argument(
        "--evaluator", action="store_true", help="Add an evaluator task that evaluates the chief's checkpoints."
    )
    parser.add_argument(
        "--evaluator-grace",
        type=float,
        default=60.0,
        help="Seconds the evaluator may take to finish once the chief has succeeded (default: 60).",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command every task runs.")
    arguments = parser.parse_args()
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
    if not command:
        parser.error("give the command to run after --")
    if arguments.workers < 1 or arguments.ps < 0:
        parser.error("expected --workers >= 1 and --ps >= 0")

    spec = cluster_spec(arguments.workers, arguments.ps, chief=not arguments.no_chief, evaluator=arguments.evaluator)
    leader = ("worker", 0) if arguments.no_chief else ("chief", 0)
    processes, threads, leader_process, evaluator_process = [], [], None, None
    # Servers first, the leader last, so the leader finds them listening.
    task_types = ("ps", "worker", "evaluator", "chief")
    tasks = [(task_type, index) for task_type in task_types for index in range(len(spec.get(task_type, [])))]
    tasks.remove(leader)
    tasks.append(leader)
    for task_type, index in tasks:
        environment = dict(os.environ, PYTHONUNBUFFERED="1")
        environment["TF_CONFIG"] = json.dumps({"cluster": spec, "task": {"type": task_type, "index": index}})
        process = subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        processes.append(process)
        prefix = task_type if task_type in ("chief", "evaluator") else f"{task_type} {index}"
        thread = threading.Thread(target=stream, args=(process, prefix), daemon=True)
        thread.start()
        threads.append(thread)
        if (task_type, index) == leader:
            leader_process = process
        if task_type == "evaluator":
            evaluator_process = process
    print(f"[launcher] started {len(processes)} tasks: {json.dumps(spec)}", flush=True)
    evaluator_status = 0
    try:
        status = leader_process.wait()
        # Multi-worker mirrored: every worker trains and must finish too.
        if arguments.no_chief:
            status = max([status] + [process.wait() for process in processes if process is not evaluator_process])
        if evaluator_process is not None and status == 0:
            evaluator_status = wait_for_evaluator(evaluator_process, arguments.evaluator_grace)
    except KeyboardInterrupt:
        status = 130
    stop(processes)
    for thread in threads:
        thread.join(timeout=5)
    print(f"[launcher] {leader[0]} exited with status {status}; all tasks stopped", flush=True)
    sys.exit(status or evaluator_status)


if __name__ == "__main__":
    main()
