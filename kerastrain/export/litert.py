"""Post-training quantization of a Keras classifier into a LiteRT model, and running it.

TensorFlow's own converter, `tf.lite.TFLiteConverter`, writes the `.tflite`
flatbuffer. The LiteRT interpreter of the `ai-edge-litert` package runs it:
TensorFlow 2.21's `tf.lite.Interpreter` still works but warns that it is
deprecated in favour of LiteRT's, which reads the same files.

This module imports TensorFlow and LiteRT only inside the functions that need
them, so a command can list `METHODS` in its `--help` at once.

Example:

```python
content = litert.convert(model, "dynamic_int8")
probabilities = litert.LiteClassifier(content).predict_proba({"tokens": ids})
```
"""

import importlib.util

import numpy as np

from kerastrain.errors import UsageError

# Both need no representative data: they change how the weights are stored.
METHODS = {
    "dynamic_int8": "int8 weights, float activations (dynamic-range quantization); about 4x smaller",
    "float16": "float16 weights, computed in float32 on CPUs; about 2x smaller",
}
INTERPRETER_PACKAGE = "ai-edge-litert"


def require_interpreter():
    """Checks that the LiteRT interpreter is installed, without importing it.

    Raises:
        UsageError: if the `ai-edge-litert` package is missing.
    """
    if importlib.util.find_spec("ai_edge_litert") is None:
        raise UsageError(
            f"Compression needs the LiteRT interpreter ({INTERPRETER_PACKAGE}). "
            "Install it with: pip install -e '.[compress]'"
        )


def convert(model, method):
    """Converts a Keras model into a quantized LiteRT model.

    Args:
        model: a `keras.Model` of kerastrain's Keras (tf-keras).
        method: a key of `METHODS`.

    Returns:
        The `.tflite` file's content, as bytes.

    Raises:
        ValueError: for an unknown `method`.
    """
    if method not in METHODS:
        raise ValueError(f"Expected method to be one of {', '.join(METHODS)}. Received: method={method!r}")
    from kerastrain.backend import tf

    converter = tf.lite.TFLiteConverter.from_keras_model(computing_in_float32(model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if method == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def computing_in_float32(model):
    """The model itself, or for a mixed-precision model a float32 copy with its weights.

    A `mixed_bfloat16` or `mixed_float16` model computes in 16-bit types that the
    converter has no builtin kernels for ("'tf.Relu' op is neither a custom op
    nor a flex op"). Its variables are float32, so the copy computes what the
    original computes, at float32 precision.
    """
    config = model.get_config()
    float32_config = float32_policies(config)
    if float32_config == config:
        return model
    copy = model.__class__.from_config(float32_config)
    copy.set_weights(model.get_weights())
    return copy


def float32_policies(config):
    """`config` with every dtype policy of a layer replaced by `"float32"`."""
    if isinstance(config, dict):
        if config.get("class_name") in ("Policy", "DTypePolicy"):
            return "float32"
        return {key: float32_policies(value) for key, value in config.items()}
    if isinstance(config, list):
        return [float32_policies(value) for value in config]
    return config


class LiteClassifier:
    """Class probabilities from a `.tflite` classifier, run by the LiteRT interpreter.

    Args:
        model_content: the `.tflite` file's content.
        batch_size: rows per interpreter call. Defaults to `256`.
    """

    def __init__(self, model_content, batch_size=256):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=model_content)
        # The signature keeps the Keras input names ("tokens", "features"), so
        # inputs are matched by name, not by tensor order.
        self.runner = self.interpreter.get_signature_runner()
        self.inputs = self.runner.get_input_details()
        self.batch_size = batch_size

    def predict_proba(self, features):
        """Class probabilities, one row per example.

        Args:
            features: the model's inputs: a dict from input name to an array, or
                one array for a single-input model.

        Returns:
            A float32 array `(examples, classes)`.
        """
        if not isinstance(features, dict):
            features = {next(iter(self.inputs)): features}
        from kerastrain import backend

        rows = len(next(iter(features.values())))
        probabilities = []
        # The interpreter applies its CPU delegate at its first call, and says so on stderr.
        with backend.filtered_native_stderr():
            for start in range(0, rows, self.batch_size):
                batch = {
                    name: np.ascontiguousarray(features[name][start : start + self.batch_size], dtype=details["dtype"])
                    for name, details in self.inputs.items()
                }
                (output,) = self.runner(**batch).values()
                probabilities.append(np.array(output))
        return np.concatenate(probabilities)
