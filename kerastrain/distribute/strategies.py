"""Building a `tf.distribute.Strategy` from its name.

This module and the cluster module are the only places that configure devices.
"""

import warnings

from kerastrain.distribute import cluster
from kerastrain.backend import tf
from kerastrain.errors import UsageError

STRATEGY_NAMES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "parameter_server")
# Variables smaller than this stay whole; larger ones (big embeddings) are split
# over the parameter servers so no single server holds or serves all of them.
MIN_SHARD_BYTES = 256 << 10


def split_cpu(count):
    """Splits the first CPU into `count` logical devices, `/cpu:0` to `/cpu:{count-1}`.

    TensorFlow fixes its devices when it first uses one, so this has to run
    before any tensor is created in the process.

    Raises:
        UsageError: if TensorFlow's devices are already fixed with another count.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    configuration = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    try:
        tf.config.set_logical_device_configuration(cpu, configuration)
    except RuntimeError:
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing != count:
            raise UsageError(
                f"--cpu-devices {count}: TensorFlow already started with {existing} CPU "
                "device(s) in this process. Build the strategy before creating any tensor "
                "(in a notebook: restart the kernel and build it first)."
            ) from None


def drop_checkpoint_retracing_warning(record):
    """A logging filter: `False` for TensorFlow's retracing warning about its own checkpoint saves.

    In a job of several tasks TensorFlow's checkpoint saver builds and traces a
    new save function on every save, on purpose (`MultiDeviceSaver.save` in
    `tensorflow/python/checkpoint/functional_saver.py`, so that each save reads
    the current options); from the fifth save on, its generic retracing check
    then warns twice an epoch (the backup and the epoch checkpoint). Other
    retracing warnings are kept.
    """
    return "MultiDeviceSaver.save.<locals>.tf_function_save" not in record.getMessage()


def build_parameter_server_strategy(local_cluster="", cluster_timeout=600.0):
    """A `ParameterServerStrategy` on a local cluster or on the TF_CONFIG cluster.

    On a TF_CONFIG cluster it first waits until every worker and parameter
    server accepts connections (see `cluster.wait_for_training_cluster`).

    Args:
        local_cluster: `"workers=N,ps=M"` starts that many in-process gRPC
            servers; empty reads the cluster from TF_CONFIG. Defaults to `""`.
        cluster_timeout: seconds to wait for the TF_CONFIG cluster's tasks.
            Defaults to `600.0`, as `--cluster-timeout`.

    Raises:
        UsageError: if neither gives a cluster, or TF_CONFIG is malformed.
        ClusterUnavailableError: if the TF_CONFIG cluster's tasks are not up
            within `cluster_timeout`.
    """
    if local_cluster:
        workers, ps = cluster.parse_local_cluster(local_cluster)
        resolver = cluster.start_local_cluster(workers, ps)
    else:
        task = cluster.require_cluster_task("parameter_server")
        cluster.wait_for_training_cluster(task, cluster_timeout)
        cluster.use_grpc_keepalive(cluster_timeout)
        resolver = cluster.training_cluster_resolver(task)
        ps = len(task.cluster["ps"])
    # tf-keras reads the options of the traced per-worker dataset under parameter
    # servers, and TensorFlow warns about it on every run; nothing a user can act on.
    warnings.filterwarnings("ignore", message="To make it possible to preserve tf.data options", category=UserWarning)
    tf.get_logger().addFilter(drop_checkpoint_retracing_warning)
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=MIN_SHARD_BYTES, max_shards=ps
    )
    return tf.distribute.ParameterServerStrategy(resolver, variable_partitioner=partitioner)


def build_strategy(name, cpu_devices=0, local_cluster="", cluster_timeout=600.0):
    """Returns the strategy called `name`.

    Args:
        name: `"default"` (no distribution), `"one_device"` (everything placed on
            the first GPU, else the CPU), `"mirrored"` (synchronous data
            parallelism over the local GPUs; on a CPU-only machine over
            `cpu_devices` logical CPUs), `"multi_worker_mirrored"` (synchronous,
            over the workers of TF_CONFIG) or `"parameter_server"`
            (asynchronous, workers and parameter servers of `local_cluster` or
            TF_CONFIG).
        cpu_devices: logical CPU devices for `"mirrored"` on a machine without
            GPUs; `0` or `1` mirrors onto the one CPU. Defaults to `0`.
        local_cluster: for `"parameter_server"`, `"workers=N,ps=M"` to start an
            in-process cluster; empty reads TF_CONFIG. Defaults to `""`.
        cluster_timeout: for `"parameter_server"` on TF_CONFIG, seconds to
            wait for its workers and parameter servers. Defaults to `600.0`.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        UsageError: for an unknown name, an impossible device request or a
            missing or malformed cluster.
        ClusterUnavailableError: if a TF_CONFIG cluster is not up in time.

    Example:

    ```python
    strategy = build_strategy("mirrored", cpu_devices=2)
    with strategy.scope():
        model = build_mlp(64, 10)
    ```
    """
    if name == "default":
        return tf.distribute.get_strategy()
    gpus = tf.config.list_physical_devices("GPU")
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy()
        count = max(cpu_devices, 1)
        if count > 1:
            split_cpu(count)
        # NCCL, the default all-reduce, needs GPUs; on CPUs reduce onto one device.
        return tf.distribute.MirroredStrategy(
            devices=[f"/cpu:{index}" for index in range(count)],
            cross_device_ops=tf.distribute.ReductionToOneDevice(),
        )
    if name == "multi_worker_mirrored":
        task = cluster.require_cluster_task("multi_worker_mirrored")
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=cluster.training_cluster_resolver(task))
    if name == "parameter_server":
        return build_parameter_server_strategy(local_cluster, cluster_timeout)
    raise UsageError(
        f"Expected --strategy to be one of {', '.join(STRATEGY_NAMES)}. Received: strategy={name!r}"
    )


def supports_jit_compile(strategy):
    """Whether XLA can compile the training step under `strategy`.

    XLA cannot reach variables of other devices, which MirroredStrategy over
    logical CPU devices needs; one replica, or replicas on GPUs, work.
    """
    if isinstance(strategy, tf.distribute.ParameterServerStrategy):
        return False
    if strategy.num_replicas_in_sync == 1:
        return True
    return all("GPU" in device.upper() for device in strategy.extended.worker_devices)


def worker_count(strategy):
    """The number of workers that run training steps under `strategy`.

    `ParameterServerStrategy` has no public attribute for it; tf-keras' own
    evaluation sharding reads the same private one.
    """
    if isinstance(strategy, tf.distribute.ParameterServerStrategy):
        return strategy.extended._num_workers
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy.num_replicas_in_sync // len(strategy.extended.worker_devices)
    return 1


def describe_cluster(strategy):
    """The cluster `strategy` trains on, as task counts: `{"worker": 2, "ps": 1}`, or `{}` in one process."""
    if isinstance(strategy, tf.distribute.ParameterServerStrategy):
        return {"worker": worker_count(strategy), "ps": strategy.extended._num_ps}
    if getattr(strategy, "cluster_resolver", None) is not None:
        spec = strategy.cluster_resolver.cluster_spec().as_dict()
        return {task: len(addresses) for task, addresses in spec.items()}
    return {}


def is_parameter_server(strategy):
    return isinstance(strategy, tf.distribute.ParameterServerStrategy)


def is_multi_worker_mirrored(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def has_progress_bar(strategy):
    """Whether tf-keras can show a per-step progress bar under `strategy` (not under parameter servers)."""
    return not is_parameter_server(strategy)


def evaluation_copy(model):
    """`model`, or a copy with the same weights outside any strategy where evaluation needs one.

    Under `MultiWorkerMirroredStrategy`, `predict` gathers every worker's
    batches with collective ops, which fail when the workers' shards end in
    batches of different sizes. The test split is small and every worker has
    all of it, so each predicts it whole with a local copy instead.
    """
    if not is_multi_worker_mirrored(model.distribute_strategy):
        return model
    from kerastrain.backend import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
