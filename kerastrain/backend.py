"""The one place that decides which Keras kerastrain uses.

kerastrain runs on tf-keras (Keras 2), not Keras 3: Keras 3 has no support for
`ParameterServerStrategy` or `MultiWorkerMirroredStrategy` in `fit`, which this
package is built around. TensorFlow reads `TF_USE_LEGACY_KERAS` when it is first
imported, so this module sets it, and the other variables TensorFlow reads at
start-up, when it is imported; `import kerastrain` imports it. TensorFlow
itself is imported only when `keras` or `tf` is first used:

```python
from kerastrain.backend import keras, tf
```

Never mix objects of `keras` (Keras 3) and of the Keras exported here.
"""

import contextlib
import os
import re
import sys
import tempfile
import warnings

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    warnings.warn(
        "TensorFlow was imported before kerastrain, so `tf.keras` is Keras 3. kerastrain itself "
        "uses `tf_keras`; import kerastrain first to make `tf.keras` agree with it.",
        stacklevel=2,
    )
os.environ["TF_USE_LEGACY_KERAS"] = "1"
# TensorFlow's C++ information lines (oneDNN notices, CPU instruction notes)
# hide the messages users need; a user who wants them sets the variable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow's default CPU allocator hands every tensor to malloc, and glibc
# returns large freed blocks to the system, so the next step's tensors of the
# same size fault their pages in again; with several tasks in one process (a
# local parameter-server cluster) that took 40-50% of a step's CPU time.
# TensorFlow's BFC allocator keeps the memory it has freed for reuse (see the
# design notes in the docs). Its default ceiling is 64 GiB; this raises it to
# the machine's memory. TF_CPU_ALLOCATOR_USE_BFC=false before the import opts out.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
    physical_mebibytes = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    os.environ.setdefault("TF_CPU_BFC_MEM_LIMIT_IN_MB", str(max(physical_mebibytes, 2**16)))

# What TensorFlow's native libraries print on every start of a machine without
# CUDA drivers, before its log settings take effect: the absl notice, once per
# library that loads the CUDA stub, and the CUDA probe of the first device
# listing. The cuInit failure is dropped only when the stub has said that the
# machine has no CUDA driver at all; with a driver installed it is a real error.
START_UP_NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    re.compile(r"^I0000 [\d:. ]+\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"),
    # LiteRT's interpreter, each time it applies its default CPU delegate.
    re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"),
)
NO_DRIVER_CUDA_PROBE = re.compile(r"^E0000 [\d:. ]+\d+ cuda_platform\.cc:\d+\] failed call to cuInit: ")
_no_cuda_driver = False


def is_start_up_noise(line):
    """Whether `line`, written by TensorFlow's native code while it starts, is known noise."""
    global _no_cuda_driver
    if START_UP_NOISE[1].match(line):
        _no_cuda_driver = True
    if any(pattern.match(line) for pattern in START_UP_NOISE):
        return True
    return _no_cuda_driver and bool(NO_DRIVER_CUDA_PROBE.match(line))


@contextlib.contextmanager
def filtered_native_stderr():
    """Holds back what native code writes to file descriptor 2, then writes back all but start-up noise.

    Python's own `sys.stderr` usually writes to the same descriptor, so
    warnings and errors raised meanwhile are written back too, in order.
    """
    descriptor = 2
    flush_python_stderr()
    try:
        saved = os.dup(descriptor)
    except OSError:  # no standard error at all
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), descriptor)
        try:
            yield
        finally:
            flush_python_stderr()
            os.dup2(saved, descriptor)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", errors="replace").splitlines()
            kept = [line for line in lines if not is_start_up_noise(line)]
            if kept:
                os.write(descriptor, ("\n".join(kept) + "\n").encode())


def flush_python_stderr():
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass


def _import_tensorflow():
    with filtered_native_stderr():
        import tensorflow
        import tf_keras

        tensorflow.config.list_physical_devices()  # the CUDA probe prints here, once
    return tensorflow, tf_keras


def __getattr__(name):
    if name in ("tf", "keras"):
        tensorflow, tf_keras = _import_tensorflow()
        globals().update(tf=tensorflow, keras=tf_keras)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["keras", "tf"]
