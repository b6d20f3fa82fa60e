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
