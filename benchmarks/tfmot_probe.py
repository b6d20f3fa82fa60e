"""Probe: what tensorflow-model-optimization (tfmot) does with a finished kerastrain run.

kerastrain does not depend on tfmot; this script is the evidence behind the
docs' compression page (docs/prediction.md). It loads a run's model and tries, each step on
its own, what tfmot offers for a trained tf-keras model:

1. `prune_low_magnitude` on the whole model;
2. `prune_low_magnitude` on each Dense, Conv1D and Embedding layer only (through
   `clone_model`), two training steps with `UpdatePruningStep` on dummy data
   (pruning is applied while training), then `strip_pruning`, reporting the
   share of zeros in the kernels;
3. `quantize_model` (quantization-aware training).

Usage (in an environment where tfmot is installed; it is not a kerastrain
dependency):

    pip install tensorflow-model-optimization
    python benchmarks/tfmot_probe.py runs/textcnn runs/mlp
"""

import argparse
import gzip
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from kerastrain import models  # noqa: E402,F401  registers the custom layers for loading
from kerastrain.backend import keras  # noqa: E402

SPARSITY = 0.5


def attempt(name, step):
    """Runs `step()`, prints one OK or FAIL line, and returns its result (None on failure)."""
    try:
        result = step()
    except Exception as error:  # The probe reports every failure and goes on.
        # Keras wraps a layer's error in a long message; its last "...Error: " line is the cause.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
        causes = [line for line in lines if "Error: " in line]
        print(f"FAIL {name}: {type(error).__name__}: {(causes or lines)[-1][:300]}")
        return None
    print(f"OK   {name}")
    return result


def dummy_inputs(model, rows=8):
    """Zeros (ones for ids) shaped as the model's inputs, by input name."""
    inputs = {
        tensor.name.split(":")[0]: np.ones((rows, *tensor.shape[1:]), dtype=tensor.dtype.as_numpy_dtype)
        for tensor in model.inputs
    }
    return inputs if len(inputs) > 1 else next(iter(inputs.values()))


def probe(run_dir, tfmot):
    sparsity = tfmot.sparsity.keras
    schedule = sparsity.ConstantSparsity(SPARSITY, begin_step=0, frequency=1)

    def load():
        # A fresh copy for each step: pruning wrappers train the layers they wrap.
        return keras.models.load_model(os.path.join(run_dir, "model.keras"), compile=False)

    attempt("prune_low_magnitude(whole model)", lambda: sparsity.prune_low_magnitude(load(), pruning_schedule=schedule))
    original_weights = load().get_weights()

    def prune_supported_layers():
        def wrap(layer):
            if isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Embedding)):
                return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
            return layer

        pruned = keras.models.clone_model(load(), clone_function=wrap)
        pruned.compile("adam", "sparse_categorical_crossentropy")
        pruned.fit(
            dummy_inputs(pruned), np.zeros(8), epochs=2, verbose=0, callbacks=[sparsity.UpdatePruningStep()]
        )
        stripped = sparsity.strip_pruning(pruned)
        kernels = [weight.numpy().ravel() for weight in stripped.trainable_weights if len(weight.shape) > 1]
        return stripped, float(np.mean(np.concatenate(kernels) == 0))

    pruned = attempt(
        "prune_low_magnitude(Dense, Conv1D, Embedding) + 2 training steps + strip_pruning", prune_supported_layers
    )
    if pruned is not None:
        stripped, zeros = pruned
        print(f"     share of zero kernel weights after strip_pruning: {zeros:.3f} (target {SPARSITY})")
        # Zeros take as many bytes as other floats: pruning shrinks only a compressed file.
        for label, weights in (("before", original_weights), ("after", stripped.get_weights())):
            raw = b"".join(weight.tobytes() for weight in weights)
            print(f"     float32 weights {label} pruning: {len(raw):,} bytes, {len(gzip.compress(raw)):,} gzipped")
    attempt("quantize_model(whole model)", lambda: tfmot.quantization.keras.quantize_model(load()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+", help="Folders of finished runs.")
    arguments = parser.parse_args()
    tfmot = attempt("import tensorflow_model_optimization", lambda: __import__("tensorflow_model_optimization"))
    if tfmot is None:
        sys.exit(1)
    print(f"     tfmot {tfmot.__version__}, Keras {keras.__version__} (tf-keras)")
    for run_dir in arguments.run_dirs:
        print(f"== {run_dir}")
        probe(run_dir, tfmot)


if __name__ == "__main__":
    main()
