"""kerastrain: TensorFlow/Keras training recipes with parameter-server support.

Importing the package sets the environment TensorFlow reads when it starts
(tf-keras as its Keras, the CPU allocator; see `kerastrain.backend`), so import
kerastrain before TensorFlow. TensorFlow itself is imported only when a model is
built or trained, so `--help` and data checks stay fast.

Example:

```python
import kerastrain

run = kerastrain.train("textcnn", data="sms", epochs=2, output_dir="runs/demo")
run.metrics["test"]["accuracy"]
run.predictor().predict(["WINNER! Claim your prize now"])
```
"""

from kerastrain import backend  # noqa: F401  (sets TensorFlow's environment; imports nothing heavy)
from kerastrain.config import MLPConfig, TextCNNConfig
from kerastrain.errors import UsageError

__version__ = "0.2.0.dev0"

# `train`, `Run` and `Predictor` import pandas and, when used, TensorFlow: they load on first use.
_LAZY = {"train": "kerastrain.api", "Run": "kerastrain.api", "Predictor": "kerastrain.export.predict"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])


__all__ = ["MLPConfig", "Predictor", "Run", "TextCNNConfig", "UsageError", "train", "__version__"]
