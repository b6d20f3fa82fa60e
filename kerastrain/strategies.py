"""Building a `tf.distribute.Strategy` from its name.

This module and the cluster module are the only places that configure devices.
"""

from kerastrain.backend import tf
from kerastrain.errors import UsageError

STRATEGY_NAMES = ("default", "one_device", "mirrored")


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


def build_strategy(name, cpu_devices=0):
    """Returns the strategy called `name`.

    Args:
        name: `"default"` (no distribution), `"one_device"` (everything placed on
            the first GPU, else the CPU) or `"mirrored"` (synchronous data
            parallelism over the local GPUs; on a CPU-only machine over
            `cpu_devices` logical CPUs).
        cpu_devices: logical CPU devices for `"mirrored"` on a machine without
            GPUs; `0` or `1` mirrors onto the one CPU. Defaults to `0`.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        UsageError: for an unknown name or an impossible device request.

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
    raise UsageError(
        f"Expected --strategy to be one of {', '.join(STRATEGY_NAMES)}. Received: strategy={name!r}"
    )


def supports_jit_compile(strategy):
    """Whether XLA can compile the training step under `strategy`.

    XLA cannot reach variables of other devices, which MirroredStrategy over
    logical CPU devices needs; one replica, or replicas on GPUs, work.
    """
    if strategy.num_replicas_in_sync == 1:
        return True
    return all("GPU" in device.upper() for device in strategy.extended.worker_devices)
