"""The backend module: which Keras, and the TensorFlow settings made before TensorFlow is imported."""

import os
import subprocess
import sys

import pytest

from kerastrain import backend

# The allocator is chosen when TensorFlow first places a tensor on the CPU, so
# each setting is probed in a fresh process. TensorFlow logs its choice of the
# BFC allocator (with TF_CPP_VMODULE=process_state=2); memory info for the CPU
# answers under it. Without it, memory info is no signal: oneDNN's own CPU
# allocator, TensorFlow's default on CPUs with VNNI or AMX units, keeps
# statistics too. Both oneDNN settings are probed, so the tests mean the same on
# every CPU.
PROBE = """
import os
from kerastrain.backend import keras, tf
tf.ones((256, 256))
try:
    tf.config.experimental.get_memory_info("CPU:0")["current"]
    allocator = "bfc"
except ValueError:
    allocator = "malloc"
print(allocator, os.environ["TF_CPU_ALLOCATOR_USE_BFC"], os.environ["TF_USE_LEGACY_KERAS"], keras.__name__)
"""


def probe(**environment):
    settings = {key: value for key, value in os.environ.items() if key != "TF_CPU_ALLOCATOR_USE_BFC"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env={**settings, **environment}, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split(), result.stderr


BFC_CHOSEN = "Using BFCAllocator with memory limit"
LOG_THE_ALLOCATOR = {"TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPP_VMODULE": "process_state=2"}


@pytest.mark.slow
@pytest.mark.parametrize("onednn", ["0", "1"], ids=["without-onednn", "with-onednn"])
def test_cpu_tensors_use_tensorflows_bfc_allocator(onednn):
    output, stderr = probe(TF_ENABLE_ONEDNN_OPTS=onednn, **LOG_THE_ALLOCATOR)
    assert output == ["bfc", "true", "1", "tf_keras"]
    assert BFC_CHOSEN in stderr


@pytest.mark.slow
@pytest.mark.parametrize("onednn", ["0", "1"], ids=["without-onednn", "with-onednn"])
def test_the_bfc_allocator_can_be_turned_off(onednn):
    output, stderr = probe(TF_CPU_ALLOCATOR_USE_BFC="false", TF_ENABLE_ONEDNN_OPTS=onednn, **LOG_THE_ALLOCATOR)
    assert output[1:] == ["false", "1", "tf_keras"]
    assert BFC_CHOSEN not in stderr
    if onednn == "0":  # TensorFlow's default allocator: malloc, without statistics
        assert output[0] == "malloc"


def test_importing_kerastrain_sets_the_environment_without_importing_tensorflow():
    script = "import os, sys, kerastrain; print(os.environ['TF_USE_LEGACY_KERAS'], 'tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["1", "False"], result.stderr


@pytest.mark.slow
def test_tensorflow_start_up_prints_no_known_noise():
    _, stderr = probe()
    noise = [line for line in stderr.splitlines() if backend.is_start_up_noise(line)]
    assert noise == []


def test_start_up_noise_is_recognised_and_other_lines_are_not():
    assert backend.is_start_up_noise(
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
    )
    assert backend.is_start_up_noise(
        "I0000 00:00:1796115550.538672    6577 cudart_stub.cc:31] Could not find cuda drivers on your "
        "machine, GPU will not be used."
    )
    assert backend.is_start_up_noise("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    assert not backend.is_start_up_noise("INFO: Created TensorFlow Lite XNNPACK delegate for CPU. And more")
    assert not backend.is_start_up_noise("E0000 00:00:1.5   12 some_kernel.cc:10] Out of memory")
    assert not backend.is_start_up_noise("Traceback (most recent call last):")


def test_lines_written_to_the_descriptor_while_filtering_are_kept_unless_noise(capfd):
    with backend.filtered_native_stderr():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"E0000 00:00:1.5   12 some_kernel.cc:10] a real error\n")
    assert capfd.readouterr().err == "E0000 00:00:1.5   12 some_kernel.cc:10] a real error\n"
