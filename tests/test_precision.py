"""Precision policies: reading the CPU's flags, resolving auto, applying a policy."""

import warnings

import pytest

from kerastrain import precision
from kerastrain.backend import keras, tf


def cpuinfo_with_flags(flags):
    return f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        (cpuinfo_with_flags("fpu vme sse avx2 amx_bf16 amx_tile"), True),
        (cpuinfo_with_flags("fpu vme avx512f avx512_bf16"), True),
        (cpuinfo_with_flags("fpu vme sse avx2 avx512f"), False),
        (cpuinfo_with_flags(""), False),
        ("flags\t\t: amx_bf16x avx512_bf16_extra\n", False),  # a whole flag, not a prefix
        ("processor\t: 0\nFeatures\t: fp asimd bf16\n", False),  # no flags line (an Arm CPU)
    ],
    ids=["amx", "avx512", "no-bfloat16", "no-flags", "partial-names", "no-flags-line"],
)
def test_cpu_supports_bfloat16_reads_the_flags(tmp_path, text, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    assert precision.cpu_supports_bfloat16(str(cpuinfo)) is expected


def test_cpu_supports_bfloat16_without_a_cpuinfo_file(tmp_path):
    assert precision.cpu_supports_bfloat16(str(tmp_path / "missing")) is False


def test_resolve_auto_precision_on_this_machine():
    if tf.config.list_physical_devices("GPU"):
        expected = "mixed_float16" if precision.gpu_runs_float16_fast() else "float32"
    else:
        flags = set()
        try:
            with open("/proc/cpuinfo") as file:
                for line in file:
                    if line.startswith("flags"):
                        flags = set(line.split(":", 1)[1].split())
                        break
        except OSError:
            pass
        expected = "mixed_bfloat16" if flags & {"amx_bf16", "avx512_bf16"} else "float32"
    assert precision.resolve_precision("auto") == expected


@pytest.fixture
def cpu_only(monkeypatch):
    real = tf.config.list_physical_devices
    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: [] if kind == "GPU" else real(kind)
    )
    monkeypatch.setattr(precision, "_warned", set())


def test_auto_precision_on_a_cpu_follows_the_bfloat16_flag(cpu_only, monkeypatch):
    monkeypatch.setattr(precision, "cpu_supports_bfloat16", lambda: True)
    assert precision.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_supports_bfloat16", lambda: False)
    assert precision.resolve_precision("auto") == "float32"


def test_mixed_float16_on_a_cpu_warns_with_the_measured_numbers(cpu_only):
    with pytest.warns(UserWarning) as record:
        assert precision.resolve_precision("mixed_float16") == "mixed_float16"
    message = str(record[0].message)
    assert "8 s" in message
    assert "300 s" in message
    assert "mixed_bfloat16" in message


def test_mixed_float16_warning_is_given_once(cpu_only):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        precision.resolve_precision("mixed_float16")
        precision.resolve_precision("mixed_float16")
    assert len([item for item in record if "mixed_float16" in str(item.message)]) == 1


@pytest.mark.parametrize("name", ["float32", "mixed_bfloat16"])
def test_explicit_precisions_pass_through_without_a_warning(cpu_only, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.resolve_precision(name) == name


def test_apply_precision_sets_the_global_policy(float32_policy):
    assert precision.apply_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert precision.apply_precision("float32") == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_auto_precision_on_a_tensor_core_gpu_avoids_float16_under_parameter_servers(monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    monkeypatch.setattr(precision, "gpu_runs_float16_fast", lambda: True)
    assert precision.resolve_precision("auto") == "mixed_float16"
    assert precision.resolve_precision("auto", "mirrored") == "mixed_float16"
    assert precision.resolve_precision("auto", "parameter_server") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "gpu_runs_float16_fast", lambda: False)
    assert precision.resolve_precision("auto", "parameter_server") == "float32"
