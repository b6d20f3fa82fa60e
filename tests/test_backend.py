"""The backend module: which Keras, and the TensorFlow settings made before TensorFlow is imported."""

import os
import subprocess
import sys

# The allocator is chosen when TensorFlow first places a tensor on the CPU, so
# each setting is probed in a fresh process. Only the BFC allocator keeps
# statistics, so memory info for the CPU answers under it and fails otherwise.
PROBE = """
from kerastrain.backend import keras, tf
tensor = tf.ones((1024, 1024))
try:
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    print("bfc", peak >= tensor.shape.num_elements() * 4, keras.__name__)
except ValueError:
    print("malloc", None, keras.__name__)
"""


def probe(**environment):
    settings = {key: value for key, value in os.environ.items() if key != "TF_CPU_ALLOCATOR_USE_BFC"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env={**settings, **environment}, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_cpu_tensors_use_tensorflows_bfc_allocator():
    assert probe() == ["bfc", "True", "tf_keras"]


def test_the_bfc_allocator_can_be_turned_off():
    assert probe(TF_CPU_ALLOCATOR_USE_BFC="false") == ["malloc", "None", "tf_keras"]
