"""Runs one kerastrain job as a chief, workers and parameter servers on this machine.

Each task is its own process with its own TF_CONFIG, on free localhost ports, all
running the same command. Their output is streamed with a task prefix. When the
chief ends (or fails, or you press Ctrl+C) every other task is stopped, and the
launcher exits with the chief's status.

Usage:

    python cluster/launch_local.py --workers 2 --ps 1 -- \\
        python -m kerastrain.recipes.textcnn --strategy parameter_server --epochs 3

    python cluster/launch_local.py --workers 2 --ps 0 --no-chief -- \\
        python -m kerastrain.recipes.textcnn --strategy multi_worker_mirrored

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


def cluster_spec(workers, ps, chief=True):
    spec = {}
    if chief:
        spec["chief"] = [f"localhost:{free_port()}"]
    spec["worker"] = [f"localhost:{free_port()}" for _ in range(workers)]
    if ps:
        spec["ps"] = [f"localhost:{free_port()}" for _ in range(ps)]
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


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="Worker tasks (default: 2).")
    parser.add_argument("--ps", type=int, default=1, help="Parameter-server tasks (default: 1).")
    parser.add_argument(
        "--no-chief", action="store_true", help="No chief task: worker 0 leads (multi_worker_mirrored)."
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command every task runs.")
    arguments = parser.parse_args()
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
    if not command:
        parser.error("give the command to run after --")
    if arguments.workers < 1 or arguments.ps < 0:
        parser.error("expected --workers >= 1 and --ps >= 0")

    spec = cluster_spec(arguments.workers, arguments.ps, chief=not arguments.no_chief)
    leader = ("worker", 0) if arguments.no_chief else ("chief", 0)
    processes, threads, leader_process = [], [], None
    # Servers first, the leader last, so the leader finds them listening.
    tasks = [(task_type, index) for task_type in ("ps", "worker", "chief") for index in range(len(spec.get(task_type, [])))]
    tasks.remove(leader)
    tasks.append(leader)
    for task_type, index in tasks:
        environment = dict(os.environ, PYTHONUNBUFFERED="1")
        environment["TF_CONFIG"] = json.dumps({"cluster": spec, "task": {"type": task_type, "index": index}})
        process = subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        processes.append(process)
        prefix = task_type if task_type == "chief" else f"{task_type} {index}"
        thread = threading.Thread(target=stream, args=(process, prefix), daemon=True)
        thread.start()
        threads.append(thread)
        if (task_type, index) == leader:
            leader_process = process
    print(f"[launcher] started {len(processes)} tasks: {json.dumps(spec)}", flush=True)
    try:
        status = leader_process.wait()
        # Multi-worker mirrored: every worker trains and must finish too.
        if arguments.no_chief:
            status = max([status] + [process.wait() for process in processes])
    except KeyboardInterrupt:
        status = 130
    stop(processes)
    for thread in threads:
        thread.join(timeout=5)
    print(f"[launcher] {leader[0]} exited with status {status}; all tasks stopped", flush=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
