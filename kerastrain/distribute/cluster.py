"""Cluster shapes: TF_CONFIG jobs and the in-process local cluster.

This is the only module that reads `TF_CONFIG` or starts a
`tf.distribute.Server`. TF_CONFIG is checked here, before TensorFlow sees it,
so a malformed one gets one line naming the problem rather than a traceback
from deep inside TensorFlow.
"""

import dataclasses
import json
import os
import socket

from kerastrain.errors import UsageError

TASK_TYPES = ("chief", "worker", "ps", "evaluator")


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """The cluster and this process's task in it, from TF_CONFIG.

    Attributes:
        cluster: a dict from task type to a list of `host:port` addresses.
        task_type: `"chief"`, `"worker"`, `"ps"` or `"evaluator"`.
        task_index: this task's index within its type.
    """

    cluster: dict
    task_type: str
    task_index: int

    @property
    def address(self):
        return self.cluster[self.task_type][self.task_index]

    @property
    def is_chief(self):
        """Whether this task writes checkpoints, plots and reports."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0


def parse_tf_config(text, strategy=None):
    """Parses and checks a TF_CONFIG JSON string.

    Args:
        text: the JSON text, as in the `TF_CONFIG` environment variable.
        strategy: the strategy the job runs, to check what it needs (a
            parameter-server job needs a chief, workers and ps). Defaults to
            `None` (no such check).

    Returns:
        A `TaskConfig`.

    Raises:
        UsageError: for bad JSON, a missing `cluster` or `task`, an unknown task
            type, an index out of range, a malformed address, or a cluster shape
            the strategy cannot run.

    Example:

    ```python
    task = parse_tf_config(
        '{"cluster": {"chief": ["10.0.0.1:2222"], "worker": ["10.0.0.2:2222"], '
        '"ps": ["10.0.0.3:2222"]}, "task": {"type": "worker", "index": 0}}'
    )
    task.is_chief  # False
    ```
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"TF_CONFIG is not valid JSON ({error}). Fix the JSON, e.g. with cluster/tf_config_examples/.") from None
    if not isinstance(value, dict) or not isinstance(value.get("cluster"), dict) or not value["cluster"]:
        raise UsageError(
            'TF_CONFIG has no "cluster" object. Expected {"cluster": {"worker": ["host:port", ...], ...}, '
            '"task": {"type": ..., "index": ...}}.'
        )
    cluster = value["cluster"]
    for task_type, addresses in cluster.items():
        if task_type not in TASK_TYPES:
            raise UsageError(
                f"TF_CONFIG cluster has unknown task type {task_type!r}. Expected some of: {', '.join(TASK_TYPES)}."
            )
        if not isinstance(addresses, list) or not addresses:
            raise UsageError(f'TF_CONFIG cluster "{task_type}" must be a non-empty list of "host:port" addresses.')
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise UsageError(
                    f'TF_CONFIG cluster "{task_type}" has address {address!r}; expected "host:port" with a port from 1 to 65535.'
                )
    for task_type in ("chief", "evaluator"):
        if len(cluster.get(task_type, [])) > 1:
            raise UsageError(f'TF_CONFIG cluster has {len(cluster[task_type])} "{task_type}" tasks; at most one is allowed.')
    task = value.get("task")
    if not isinstance(task, dict) or "type" not in task:
        raise UsageError('TF_CONFIG has no "task": {"type": ..., "index": ...}. Add this process\'s task.')
    task_type, task_index = task["type"], task.get("index", 0)
    if task_type not in TASK_TYPES:
        raise UsageError(f"TF_CONFIG task type {task_type!r} is unknown. Expected one of: {', '.join(TASK_TYPES)}.")
    if task_type not in cluster:
        raise UsageError(f'TF_CONFIG task type "{task_type}" is not in its cluster. Add it to "cluster" or fix the task.')
    if not isinstance(task_index, int) or isinstance(task_index, bool) or not 0 <= task_index < len(cluster[task_type]):
        raise UsageError(
            f'TF_CONFIG task index {task_index!r} is out of range: the cluster has {len(cluster[task_type])} '
            f'"{task_type}" task(s), indexed from 0.'
        )
    if strategy == "parameter_server":
        missing = [name for name in ("chief", "worker", "ps") if name not in cluster]
        if missing:
            raise UsageError(
                f'TF_CONFIG for --strategy parameter_server needs "chief", "worker" and "ps" tasks; '
                f'"{missing[0]}" is missing.'
            )
    if strategy == "multi_worker_mirrored" and "ps" in cluster:
        raise UsageError(
            'TF_CONFIG has "ps" tasks, which --strategy multi_worker_mirrored does not use. '
            "Use --strategy parameter_server, or drop the ps tasks."
        )
    return TaskConfig(cluster=cluster, task_type=task_type, task_index=task_index)


def writes_outputs(strategy, local_cluster=""):
    """Whether this process writes the run folder: the chief does, other workers don't.

    Under `multi_worker_mirrored` every worker trains, so every worker runs the
    same steps, saves included (some are collective); non-chief workers write
    into a temporary folder instead.
    """
    if strategy not in ("multi_worker_mirrored", "parameter_server") or local_cluster:
        return True
    task = tf_config_from_environment(strategy)
    return task is None or task.is_chief


def is_evaluator_task(strategy, local_cluster=""):
    """Whether this process is the `evaluator` task of a TF_CONFIG job.

    The evaluator trains nothing: it evaluates the chief's epoch checkpoints as
    they appear (sidecar evaluation).
    """
    if strategy not in ("multi_worker_mirrored", "parameter_server") or local_cluster:
        return False
    task = tf_config_from_environment(strategy)
    return task is not None and task.task_type == "evaluator"


def job_has_evaluator(strategy, local_cluster=""):
    """Whether this process's TF_CONFIG job has an `evaluator` task to write checkpoints for."""
    if strategy not in ("multi_worker_mirrored", "parameter_server") or local_cluster:
        return False
    task = tf_config_from_environment(strategy)
    return task is not None and "evaluator" in task.cluster


def training_cluster_resolver(task):
    """A cluster resolver for the training tasks of `task`'s cluster, the evaluator left out.

    The evaluator runs no gRPC server, so a coordinator that counted it in its
    cluster would try to reach it.

    Args:
        task: this process's `TaskConfig`.

    Returns:
        A `tf.distribute.cluster_resolver.SimpleClusterResolver`.
    """
    from kerastrain.backend import tf

    training_tasks = {name: addresses for name, addresses in task.cluster.items() if name != "evaluator"}
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(training_tasks), task_type=task.task_type, task_id=task.task_index, rpc_layer="grpc"
    )


def tf_config_from_environment(strategy=None):
    """The checked TF_CONFIG of this process, or `None` when it is unset."""
    text = os.environ.get("TF_CONFIG", "").strip()
    return parse_tf_config(text, strategy) if text else None


def parse_local_cluster(text):
    """Parses `--local-cluster` text such as `"workers=2,ps=1"`.

    Returns:
        A tuple `(workers, ps)`.

    Raises:
        UsageError: for anything but `workers=N,ps=M` with N >= 1 and M >= 1.
    """
    counts = {}
    for part in text.split(","):
        name, _, number = part.strip().partition("=")
        if name not in ("workers", "ps") or not number.isdigit():
            raise UsageError(f"Expected --local-cluster like workers=2,ps=1. Received: {text!r}")
        counts[name] = int(number)
    if counts.get("workers", 0) < 1 or counts.get("ps", 0) < 1:
        raise UsageError(f"Expected --local-cluster with workers >= 1 and ps >= 1, like workers=2,ps=1. Received: {text!r}")
    return counts["workers"], counts["ps"]


def describe_tasks(cluster_shape):
    """Task counts in words, chief first, such as "1 chief, 2 workers, 1 ps".

    Args:
        cluster_shape: a dict from task type to the number of such tasks.
    """
    ordered = sorted(cluster_shape, key=lambda task: TASK_TYPES.index(task) if task in TASK_TYPES else len(TASK_TYPES))
    return ", ".join(
        f"{cluster_shape[task]} {task}" if cluster_shape[task] == 1 or task == "ps" else f"{cluster_shape[task]} {task}s"
        for task in ordered
    )


def free_port():
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def start_local_cluster(workers, ps):
    """Starts `workers` worker and `ps` parameter-server gRPC servers in this process.

    They listen on free `localhost` ports and run until the process ends
    (TensorFlow servers cannot be stopped), so start one local cluster per
    process. This process then acts as the chief.

    Args:
        workers: number of worker servers.
        ps: number of parameter servers.

    Returns:
        A `tf.distribute.cluster_resolver.SimpleClusterResolver` for
        `tf.distribute.ParameterServerStrategy`.
    """
    from kerastrain.backend import tf

    # With a worker failing, fail the RPC to the caller at once (the coordinator
    # then reschedules) instead of gRPC's waiting and retrying.
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    spec = {
        "worker": [f"localhost:{free_port()}" for _ in range(workers)],
        "ps": [f"localhost:{free_port()}" for _ in range(ps)],
    }
    cluster_spec = tf.train.ClusterSpec(spec)
    worker_config = tf.compat.v1.ConfigProto()
    # Each worker runs a step function and answers RPCs at once; with fewer
    # inter-op threads than that (2-core machines) the workers deadlock.
    worker_config.inter_op_parallelism_threads = max(workers + 1, os.cpu_count() or 1)
    for index in range(workers):
        tf.distribute.Server(cluster_spec, job_name="worker", task_index=index, config=worker_config, protocol="grpc")
    for index in range(ps):
        tf.distribute.Server(cluster_spec, job_name="ps", task_index=index, protocol="grpc")
    return tf.distribute.cluster_resolver.SimpleClusterResolver(cluster_spec, rpc_layer="grpc")


def serve_if_server_task(strategy, local_cluster=""):
    """In a parameter-server TF_CONFIG job, makes worker and ps tasks serve.

    Every task of a job runs the same command. For a worker or a parameter
    server this starts its gRPC server on its TF_CONFIG address and blocks until
    the process is stopped; the chief's coordinator sends it work. Other tasks
    return at once.

    Args:
        strategy: the `--strategy` name.
        local_cluster: the `--local-cluster` text; a local cluster has no
            server tasks of its own. Defaults to `""`.

    Returns:
        `False` if this process is not a server task (it never returns otherwise).

    Raises:
        UsageError: if TF_CONFIG is malformed or the address cannot be bound.
    """
    if strategy != "parameter_server" or local_cluster:
        return False
    task = tf_config_from_environment(strategy)
    if task is None or task.task_type not in ("worker", "ps"):
        return False
    from kerastrain.backend import tf

    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    server_config = tf.compat.v1.ConfigProto()
    if task.task_type == "worker":
        # As for the local cluster: enough inter-op threads not to deadlock.
        server_config.inter_op_parallelism_threads = max(len(task.cluster["worker"]) + 1, os.cpu_count() or 1)
    try:
        server = tf.distribute.Server(
            tf.train.ClusterSpec(task.cluster),
            job_name=task.task_type,
            task_index=task.task_index,
            config=server_config,
            protocol="grpc",
        )
    except tf.errors.OpError as error:
        raise UsageError(
            f"TF_CONFIG {task.task_type} {task.task_index} cannot listen on {task.address} "
            f"({error.message.strip().splitlines()[0]}); is the port in use? Pick a free port."
        ) from None
    print(f"kerastrain: {task.task_type} {task.task_index} serving on {task.address}", flush=True)
    server.join()
    return True


def keeps_epoch_checkpoints(strategy, local_cluster=""):
    """Whether the chief of this job keeps checkpoints of its last epochs for an evaluator task."""
    return job_has_evaluator(strategy, local_cluster)
