"""Cluster shapes: TF_CONFIG jobs and the in-process local cluster.

This is the only module that reads `TF_CONFIG` or starts a
`tf.distribute.Server`. TF_CONFIG is checked here, before TensorFlow sees it,
so a malformed one gets one line naming the problem rather than a traceback
from deep inside TensorFlow (or a chief that waits forever).

Every shape that TensorFlow accepts for the strategy is accepted: the one
the Kubeflow training operator writes for a TFJob (every replica type listed,
the evaluator included, and `"environment": "cloud"`), an evaluator left out
of the other tasks' cluster (TensorFlow's parameter-server tutorial), an
evaluator whose TF_CONFIG has an evaluator-only cluster or none, and a task
index written as a string. The evaluator is never part of the cluster the
chief trains on: it runs no server, and a coordinator that waits for one
waits forever.
"""

import concurrent.futures
import dataclasses
import json
import os
import socket
import time

from kerastrain.errors import ClusterUnavailableError, UsageError

TASK_TYPES = ("chief", "worker", "ps", "evaluator")
CLUSTER_STRATEGIES = ("multi_worker_mirrored", "parameter_server")
# The last epoch checkpoints the chief of a TF_CONFIG job keeps for an evaluator.
EPOCH_CHECKPOINTS_KEPT = 5
# The gRPC channel options that TensorFlow reads from the environment.
GRPC_OPTIONS = "TF_GRPC_DEFAULT_OPTIONS"
CLUSTER_SHAPE = '{"cluster": {"worker": ["host:port", ...], ...}, "task": {"type": ..., "index": ...}}'


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """The cluster and this process's task in it, from TF_CONFIG.

    Attributes:
        cluster: a dict from task type to a list of `host:port` addresses, as
            TF_CONFIG gives it: it may list the evaluator, and an evaluator's
            may be empty.
        task_type: `"chief"`, `"worker"`, `"ps"` or `"evaluator"`.
        task_index: this task's index within its type.
    """

    cluster: dict
    task_type: str
    task_index: int

    @property
    def address(self):
        """This task's `host:port`, or `None` for an evaluator that its cluster does not list."""
        addresses = self.cluster.get(self.task_type, [])
        return addresses[self.task_index] if self.task_index < len(addresses) else None

    @property
    def training_cluster(self):
        """The tasks that train, every one but the evaluator: what the chief connects to."""
        return {name: list(addresses) for name, addresses in self.cluster.items() if name != "evaluator"}

    @property
    def is_chief(self):
        """Whether this task writes checkpoints, plots and reports."""
        if self.task_type == "evaluator":
            return False
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0


def parse_tf_config(text, strategy=None):
    """Parses and checks a TF_CONFIG JSON string.

    Accepts what TensorFlow accepts: extra keys such as `"environment"`, a
    task index written as a string (`"1"`), and an evaluator that its cluster
    leaves out or whose cluster is empty or missing.

    Args:
        text: the JSON text, as in the `TF_CONFIG` environment variable.
        strategy: the strategy the job runs, to check what it needs (a
            parameter-server job needs a chief, workers and ps). Defaults to
            `None` (no such check).

    Returns:
        A `TaskConfig`.

    Raises:
        UsageError: for bad JSON, a missing `cluster` or `task`, an unknown
            or `master` task type, a sparse (dict) list of tasks, an index out
            of range, a malformed address, or a cluster shape the strategy
            cannot run. The message is one line naming the problem and the fix.

    Example:

    ```python
    task = parse_tf_config(
        '{"cluster": {"chief": ["10.0.0.1:2222"], "worker": ["10.0.0.2:2222"], '
        '"ps": ["10.0.0.3:2222"]}, "task": {"type": "worker", "index": "0"}}'
    )
    task.is_chief  # False
    ```
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"TF_CONFIG is not valid JSON ({error}). Fix the JSON, e.g. with cluster/tf_config_examples/.") from None
    if not isinstance(value, dict):
        raise UsageError(f"TF_CONFIG is not a JSON object. Expected {CLUSTER_SHAPE}.")
    task_type, task_index = parse_task(value.get("task"))
    cluster = parse_cluster(value.get("cluster"), task_type)
    if task_type not in cluster and task_type != "evaluator":
        raise UsageError(f'TF_CONFIG task type "{task_type}" is not in its cluster. Add it to "cluster" or fix the task.')
    if task_type in cluster and task_index >= len(cluster[task_type]):
        raise UsageError(
            f'TF_CONFIG task index {task_index!r} is out of range: the cluster has {len(cluster[task_type])} '
            f'"{task_type}" task(s), indexed from 0.'
        )
    if task_type != "evaluator":
        check_strategy_shape(cluster, strategy)
    return TaskConfig(cluster=cluster, task_type=task_type, task_index=task_index)


def master_refused(where):
    return UsageError(
        f'TF_CONFIG {where} "master", the name SageMaker and a TFJob\'s Master replica use; '
        "TensorFlow 2.21's distribution strategies refuse it. Call that task \"chief\" "
        "(in a TFJob: a Chief replica instead of Master)."
    )


def parse_task(task):
    """The `(type, index)` of TF_CONFIG's `"task"`; a missing index is 0, `"1"` is 1."""
    if not isinstance(task, dict) or "type" not in task:
        raise UsageError('TF_CONFIG has no "task": {"type": ..., "index": ...}. Add this process\'s task.')
    task_type, task_index = task["type"], task.get("index", 0)
    if task_type == "master":
        raise master_refused("task type is")
    if task_type not in TASK_TYPES:
        raise UsageError(f"TF_CONFIG task type {task_type!r} is unknown. Expected one of: {', '.join(TASK_TYPES)}.")
    # TensorFlow reads the index with int(), so "1" is task 1, as some templates write it.
    if isinstance(task_index, str) and task_index.strip().isdigit():
        task_index = int(task_index)
    if isinstance(task_index, bool) or not isinstance(task_index, int):
        raise UsageError(
            f'TF_CONFIG task index {task_index!r} is not a whole number. Expected an index from 0, like 0 or "1".'
        )
    if task_index < 0:
        raise UsageError(f"TF_CONFIG task index {task_index!r} is out of range: tasks are indexed from 0.")
    return task_type, task_index


def parse_cluster(cluster, task_type):
    """TF_CONFIG's `"cluster"`, checked; an evaluator's may be missing or empty."""
    if cluster is None or cluster == {}:
        if task_type == "evaluator":
            return {}
        raise UsageError(f'TF_CONFIG has no "cluster" object. Expected {CLUSTER_SHAPE}.')
    if not isinstance(cluster, dict):
        raise UsageError(f'TF_CONFIG "cluster" is not an object. Expected {CLUSTER_SHAPE}.')
    for name, addresses in cluster.items():
        if name == "master":
            raise master_refused("cluster names")
        if name not in TASK_TYPES:
            raise UsageError(
                f"TF_CONFIG cluster has unknown task type {name!r}. Expected some of: {', '.join(TASK_TYPES)}."
            )
        if isinstance(addresses, dict):
            raise UsageError(
                f'TF_CONFIG cluster lists "{name}" as {{index: address}}, the sparse form that a TFJob with '
                "enableDynamicWorker: true writes; TensorFlow 2.21's strategies need every task's address in a "
                "list. Set enableDynamicWorker: false (the default) in the TFJob."
            )
        if not isinstance(addresses, list) or not addresses:
            raise UsageError(f'TF_CONFIG cluster "{name}" must be a non-empty list of "host:port" addresses.')
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise UsageError(
                    f'TF_CONFIG cluster "{name}" has address {address!r}; expected "host:port" with a port from 1 to 65535.'
                )
    for name in ("chief", "evaluator"):
        if len(cluster.get(name, [])) > 1:
            raise UsageError(f'TF_CONFIG cluster has {len(cluster[name])} "{name}" tasks; at most one is allowed.')
    return cluster


def check_strategy_shape(cluster, strategy):
    """Checks that a training task's cluster has what `strategy` needs."""
    if strategy == "parameter_server":
        if "ps" not in cluster:
            raise UsageError(
                'TF_CONFIG for --strategy parameter_server has no "ps" tasks. Add the parameter servers '
                "(in a TFJob: a PS replica), or train on the workers alone with --strategy multi_worker_mirrored."
            )
        missing = [name for name in ("chief", "worker") if name not in cluster]
        if missing:
            raise UsageError(
                f'TF_CONFIG for --strategy parameter_server needs "chief", "worker" and "ps" tasks; '
                f'"{missing[0]}" is missing. Add it (in a TFJob: a {missing[0].capitalize()} replica).'
            )
    if strategy == "multi_worker_mirrored" and "ps" in cluster:
        raise UsageError(
            'TF_CONFIG has "ps" tasks, which --strategy multi_worker_mirrored does not use. '
            "Use --strategy parameter_server, or drop the ps tasks."
        )


def tf_config_from_environment(strategy=None):
    """The checked TF_CONFIG of this process, or `None` when it is unset."""
    text = os.environ.get("TF_CONFIG", "").strip()
    return parse_tf_config(text, strategy) if text else None


def cluster_job_task(strategy, local_cluster=""):
    """This process's task when it is part of a TF_CONFIG job, else `None`.

    TF_CONFIG matters only to the multi-worker strategies, and not with
    `--local-cluster`, whose tasks all run in this process.
    """
    if strategy not in CLUSTER_STRATEGIES or local_cluster:
        return None
    return tf_config_from_environment(strategy)


def require_cluster_task(strategy):
    """This process's TF_CONFIG task for `strategy`, which needs one.

    Raises:
        UsageError: if TF_CONFIG is unset or malformed.
    """
    task = tf_config_from_environment(strategy)
    if task is not None:
        return task
    if strategy == "parameter_server":
        raise UsageError(
            "--strategy parameter_server needs a cluster: set TF_CONFIG (see cluster/) or pass "
            "--local-cluster workers=2,ps=1 for an in-process one."
        )
    raise UsageError(
        "--strategy multi_worker_mirrored needs TF_CONFIG naming its workers (see cluster/); "
        "on one machine use --strategy mirrored."
    )


def check_cluster_settings(config):
    """Checks the cluster that `config` asks for, without importing TensorFlow.

    Call it first, so that a bad `--local-cluster`, a malformed TF_CONFIG or a
    multi-worker strategy without a cluster is one line and exit status 2
    before TensorFlow takes seconds to start.

    Args:
        config: a validated `TrainingConfig`.

    Returns:
        This process's `TaskConfig` in a TF_CONFIG job, or `None`.

    Raises:
        UsageError: naming the problem and the fix.

    Example:

    ```python
    task = check_cluster_settings(config)  # None outside TF_CONFIG jobs
    ```
    """
    if config.local_cluster:
        parse_local_cluster(config.local_cluster)
        return None
    if config.strategy not in CLUSTER_STRATEGIES:
        return None
    return require_cluster_task(config.strategy)


def writes_outputs(strategy, local_cluster=""):
    """Whether this process writes the run folder: the chief does, other workers don't.

    Under `multi_worker_mirrored` every worker trains, so every worker runs the
    same steps, saves included (some are collective); non-chief workers write
    into a temporary folder instead.
    """
    task = cluster_job_task(strategy, local_cluster)
    return task is None or task.is_chief


def is_evaluator_task(strategy, local_cluster=""):
    """Whether this process is the `evaluator` task of a TF_CONFIG job.

    The evaluator trains nothing: it evaluates the chief's epoch checkpoints as
    they appear (sidecar evaluation).
    """
    task = cluster_job_task(strategy, local_cluster)
    return task is not None and task.task_type == "evaluator"


def keeps_epoch_checkpoints(strategy, local_cluster=""):
    """Whether this process keeps a checkpoint of each of its last epochs for an evaluator.

    Every training task of a TF_CONFIG job does, whether or not its TF_CONFIG
    lists an evaluator: TensorFlow's own layout leaves the evaluator out of
    the other tasks' cluster, so the chief cannot know whether one runs. It
    keeps the last `EPOCH_CHECKPOINTS_KEPT`.
    """
    task = cluster_job_task(strategy, local_cluster)
    return task is not None and task.task_type != "evaluator"


def training_cluster_resolver(task):
    """A cluster resolver for the training tasks of `task`'s cluster, the evaluator left out.

    The evaluator runs no gRPC server, so a coordinator that counted it in its
    cluster would wait for it forever.

    Args:
        task: this process's `TaskConfig`.

    Returns:
        A `tf.distribute.cluster_resolver.SimpleClusterResolver`.
    """
    from kerastrain.backend import tf

    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(task.training_cluster), task_type=task.task_type, task_id=task.task_index, rpc_layer="grpc"
    )


def accepts_connections(address, timeout_seconds=2.0):
    """Whether something accepts a TCP connection at `address` (`host:port`) now."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_seconds):
            return True
    except (OSError, ValueError):  # refused, unreachable, timed out, or a name that does not resolve yet
        return False


def describe_addresses(tasks, limit=6):
    """Tasks as "worker 1 (host:2222), ps 0 (host:2222)", at most `limit` of them named."""
    named = [f"{task_type} {index} ({address})" for task_type, index, address in tasks[:limit]]
    if len(tasks) > limit:
        named.append(f"{len(tasks) - limit} more")
    return ", ".join(named)


def unreachable(tasks, timeout_seconds=2.0):
    """The `(task_type, index, address)` of `tasks` that accept no TCP connection now."""
    if not tasks:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(tasks), 32)) as pool:
        reachable = list(pool.map(lambda task: accepts_connections(task[2], timeout_seconds), tasks))
    return [task for task, is_up in zip(tasks, reachable) if not is_up]


def server_tasks(cluster):
    """The `(task_type, index, address)` of the workers and parameter servers of `cluster`."""
    return [
        (task_type, index, address)
        for task_type in ("worker", "ps")
        for index, address in enumerate(cluster.get(task_type, []))
    ]


def wait_for_training_cluster(task, timeout_seconds, report_seconds=10.0, poll_seconds=1.0):
    """Waits until every worker and parameter server of the training cluster accepts connections.

    A chief that connects to tasks that are not up yet (pods still starting,
    a typo in an address) would otherwise wait inside TensorFlow without a
    word. While it waits, it prints one line about every `report_seconds`
    naming the tasks and addresses it still waits for.

    Args:
        task: the chief's `TaskConfig`.
        timeout_seconds: how long to wait (`--cluster-timeout`).
        report_seconds: time between two lines. Defaults to `10.0`.
        poll_seconds: time between two tries. Defaults to `1.0`.

    Raises:
        ClusterUnavailableError: if some task accepts no connection within
            `timeout_seconds` (exit status 138: an engine may retry the job).
    """
    waiting = server_tasks(task.cluster)
    start = time.monotonic()
    next_report = start
    while True:
        waiting = unreachable(waiting, timeout_seconds=min(2.0, max(poll_seconds, 0.1)))
        if not waiting:
            return
        elapsed = time.monotonic() - start
        if elapsed >= timeout_seconds:
            raise ClusterUnavailableError(
                f"TF_CONFIG's {describe_addresses(waiting)} accepted no connection within --cluster-timeout "
                f"{timeout_seconds:g} s. Check that those tasks run and that their addresses are right, "
                "or raise --cluster-timeout."
            )
        if time.monotonic() >= next_report:
            print(
                f"kerastrain: {task.task_type}: waiting for {describe_addresses(waiting)} to accept connections "
                f"({elapsed:.0f} s of --cluster-timeout {timeout_seconds:g} s)",
                flush=True,
            )
            next_report += report_seconds
        time.sleep(poll_seconds)


def use_grpc_keepalive(timeout_seconds):
    """Makes TensorFlow's gRPC calls of this process fail once a peer is unreachable for `timeout_seconds`.

    Without it, a call to a task whose host is cut off the network (no
    connection reset) waits as long as the link is down. With it, each
    connection is pinged after 10 s without traffic and closed, failing its
    calls with `tf.errors.UnavailableError`, when a ping gets no answer
    within `timeout_seconds`. TensorFlow reads the options when it opens its
    first connection, so call this before building the strategy or server.
    Options the user set in `TF_GRPC_DEFAULT_OPTIONS` are kept.

    Args:
        timeout_seconds: how long a ping may go unanswered (`--cluster-timeout`).
    """
    options = [option for option in os.environ.get(GRPC_OPTIONS, "").split(",") if option.strip()]
    names = {option.partition("=")[0].strip() for option in options}
    for name, value in (("grpc.keepalive_time_ms", 10_000), ("grpc.keepalive_timeout_ms", int(timeout_seconds * 1000))):
        if name not in names:
            options.append(f"{name}={value}")
    os.environ[GRPC_OPTIONS] = ",".join(options)


# Every task of an in-process cluster is a server thread pool in this process;
# past a few dozen the process spends its time starting them.
LARGEST_LOCAL_CLUSTER = 32


def parse_local_cluster(text):
    """Parses `--local-cluster` text such as `"workers=2,ps=1"`.

    Returns:
        A tuple `(workers, ps)`.

    Raises:
        UsageError: for anything but `workers=N,ps=M`, each once, with N and M
            from 1 to `LARGEST_LOCAL_CLUSTER`.
    """
    counts = {}
    for part in text.split(","):
        name, _, number = part.strip().partition("=")
        if name not in ("workers", "ps") or not number.isdigit():
            raise UsageError(f"Expected --local-cluster like workers=2,ps=1. Received: {text!r}")
        if name in counts:
            raise UsageError(f"Expected --local-cluster to give {name} once, like workers=2,ps=1. Received: {text!r}")
        counts[name] = int(number)
    if not all(1 <= counts.get(name, 0) <= LARGEST_LOCAL_CLUSTER for name in ("workers", "ps")):
        raise UsageError(
            f"Expected --local-cluster with workers and ps from 1 to {LARGEST_LOCAL_CLUSTER}, like workers=2,ps=1; "
            f"larger clusters run as separate tasks (cluster/launch_local.py, TF_CONFIG). Received: {text!r}"
        )
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


def serve_if_server_task(strategy, local_cluster="", cluster_timeout=600.0):
    """In a parameter-server TF_CONFIG job, makes worker and ps tasks serve.

    Every task of a job runs the same command. For a worker or a parameter
    server this starts its gRPC server on its TF_CONFIG address and blocks until
    the process is stopped; the chief's coordinator sends it work. Other tasks
    return at once.

    Args:
        strategy: the `--strategy` name.
        local_cluster: the `--local-cluster` text; a local cluster has no
            server tasks of its own. Defaults to `""`.
        cluster_timeout: how long a peer may be unreachable before this
            task's calls to it fail (see `use_grpc_keepalive`). Defaults to
            `600.0`, as `--cluster-timeout`.

    Returns:
        `False` if this process is not a server task (it never returns otherwise).

    Raises:
        UsageError: if TF_CONFIG is malformed or the address cannot be bound.
    """
    if strategy != "parameter_server":
        return False
    task = cluster_job_task(strategy, local_cluster)
    if task is None or task.task_type not in ("worker", "ps"):
        return False
    from kerastrain.backend import tf

    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    use_grpc_keepalive(cluster_timeout)
    server_config = tf.compat.v1.ConfigProto()
    if task.task_type == "worker":
        # As for the local cluster: enough inter-op threads not to deadlock.
        server_config.inter_op_parallelism_threads = max(len(task.cluster["worker"]) + 1, os.cpu_count() or 1)
    try:
        server = tf.distribute.Server(
            tf.train.ClusterSpec(task.training_cluster),
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
