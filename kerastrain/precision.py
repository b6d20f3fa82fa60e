"""Choosing and applying the float policy: float32, mixed_float16, mixed_bfloat16."""

import warnings

from kerastrain.backend import keras, tf

# Measured on a 2-core CPU machine without float16 units: a TextCNN that trains
# 2 epochs of 8k examples in about 8 s in float32 had not finished them after
# 300 s under mixed_float16 (TensorFlow emulates float16 arithmetic there).
CPU_FLOAT16_WARNING = (
    "mixed_float16 on a CPU is emulated and very slow (measured: 2 TextCNN epochs that "
    "take 8 s in float32 had not finished after 300 s). Use --precision auto, float32, "
    "or mixed_bfloat16 on a CPU with bfloat16 units."
)
_warned = set()


def cpu_supports_bfloat16(cpuinfo_path="/proc/cpuinfo"):
    """Whether this CPU has bfloat16 matrix or vector units (AMX or AVX512-BF16).

    Reads the Linux CPU flags; elsewhere it answers `False`.
    """
    try:
        with open(cpuinfo_path) as file:
            for line in file:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def gpu_runs_float16_fast():
    """Whether every visible GPU has tensor cores (compute capability 7.0 or newer)."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return False
    for gpu in gpus:
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if not capability or tuple(capability) < (7, 0):
            return False
    return True


def resolve_precision(requested, strategy=None):
    """The policy name to use for `requested` on this machine.

    `"auto"` picks `"mixed_float16"` on GPUs with tensor cores,
    `"mixed_bfloat16"` on a CPU-only machine whose CPU has bfloat16 units, and
    `"float32"` otherwise. An explicit `"mixed_float16"` on a CPU-only machine is
    kept but warns once, since it is emulated there. Under a parameter-server
    strategy, where tf-keras refuses `"mixed_float16"`, `"auto"` picks
    `"mixed_bfloat16"` instead (an explicit `"mixed_float16"` is refused earlier,
    by the config's checks).

    Args:
        requested: `"auto"`, `"float32"`, `"mixed_float16"` or `"mixed_bfloat16"`.
        strategy: the `--strategy` name. Defaults to `None`.

    Returns:
        The name of a `keras.mixed_precision.Policy`.
    """
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    if requested == "auto":
        if has_gpu and gpu_runs_float16_fast():
            return "mixed_bfloat16" if strategy == "parameter_server" else "mixed_float16"
        if has_gpu:
            return "float32"
        return "mixed_bfloat16" if cpu_supports_bfloat16() else "float32"
    if requested == "mixed_float16" and not has_gpu and requested not in _warned:
        _warned.add(requested)
        warnings.warn(CPU_FLOAT16_WARNING, stacklevel=2)
    return requested


def apply_precision(requested, strategy=None):
    """Resolves `requested` and sets it as Keras' global policy.

    Call it before building the model: layers take the global policy when they
    are created.

    Args:
        requested: as for `resolve_precision`.
        strategy: the `--strategy` name. Defaults to `None`.

    Returns:
        The name of the policy now in force.
    """
    policy = resolve_precision(requested, strategy)
    keras.mixed_precision.set_global_policy(policy)
    return policy
