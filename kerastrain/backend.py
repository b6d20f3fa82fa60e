"""The one place that decides which Keras kerastrain uses.

kerastrain runs on tf-keras (Keras 2), not Keras 3: Keras 3 has no support for
`ParameterServerStrategy` or `MultiWorkerMirroredStrategy` in `fit`, which this
package is built around. TensorFlow reads `TF_USE_LEGACY_KERAS` when it is first
imported, so this module sets it before importing TensorFlow. Every other module
imports Keras from here:

```python
from kerastrain.backend import keras, tf
```

Never mix objects of `keras` (Keras 3) and of the Keras exported here.
"""

import os
import sys
import warnings

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# TensorFlow's C++ start-up chatter (oneDNN notices, CUDA probing) hides the
# messages users need; a user who wants it back sets the variable themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow's default CPU allocator hands every tensor to malloc, and glibc
# returns large freed blocks to the system, so the next step's tensors of the
# same size fault their pages in again. With several tasks in one process (a
# local parameter-server cluster) this took 40-50% of the CPU time of a step
# (perf: page faults and page clearing). TensorFlow's BFC allocator keeps the
# memory it has freed for reuse. Measured on TREC's TextCNN, 2 cores: CPU time
# per epoch 5.5 s -> 3.3 s under a local parameter-server cluster, 1.7 s ->
# 1.5 s without a strategy, peak memory unchanged (see README, "Memory
# allocator"). Its default ceiling is 64 GiB; this raises it to the machine's
# memory. Setting TF_CPU_ALLOCATOR_USE_BFC=false before the import opts out.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
    physical_mebibytes = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    os.environ.setdefault("TF_CPU_BFC_MEM_LIMIT_IN_MB", str(max(physical_mebibytes, 2**16)))

if "tensorflow" in sys.modules:
    warnings.warn(
        "TensorFlow was imported before kerastrain, so `tf.keras` may be Keras 3. "
        "kerastrain itself uses `tf_keras`; import kerastrain first to make "
        "`tf.keras` agree with it.",
        stacklevel=2,
    )

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["keras", "tf"]
