"""Every number setting, tried with generated values: non-finite and out-of-range ones are refused.

The values come from `hypothesis`, drawn from each field's own limits, so a new
field is covered as soon as it is declared. Values are given the three ways a
user gives them: as Python values, as flags and in a TOML preset.
"""

import dataclasses
import math
import pathlib
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kerastrain import cli
from kerastrain.config import LARGEST_SEED, MLPConfig, TextCNNConfig, check_value, field_type, resolve
from kerastrain.errors import UsageError

FAST = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def fields_of_type(kind):
    return [
        pytest.param(config_class, item, id=f"{config_class.__name__}.{item.name}")
        for config_class in (TextCNNConfig, MLPConfig)
        for item in dataclasses.fields(config_class)
        if field_type(item) is kind and item.metadata.get("choices") is None
    ]


FLOAT_FIELDS = fields_of_type(float)
INT_FIELDS = fields_of_type(int)
LIST_FIELDS = fields_of_type(tuple)


def flag(item):
    return "--" + item.name.replace("_", "-")


def limits(item):
    return item.metadata["minimum"], item.metadata["maximum"]


def assert_refused_naming(item, action):
    with pytest.raises(UsageError) as excinfo:
        action()
    message = str(excinfo.value)
    assert "\n" not in message, message
    assert flag(item) in message, message
    return message


def parse_flags(config_class, argv):
    return cli.parse_command(config_class, argv, "test", "test").config


def resolve_preset(config_class, text):
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "preset.toml"
        path.write_text(text)
        return resolve(config_class, path)


def toml_value(value):
    if isinstance(value, tuple):
        return "[" + ", ".join(str(part) for part in value) + "]"
    return repr(value)  # nan, inf and -inf are TOML floats too


def out_of_range_floats(item):
    minimum, maximum = limits(item)
    below = st.floats(max_value=minimum, exclude_max=True, allow_nan=False, allow_infinity=False)
    above = st.floats(min_value=maximum, exclude_min=True, allow_nan=False, allow_infinity=False)
    return below | above


def in_range_floats(item):
    minimum, maximum = limits(item)
    return st.floats(min_value=minimum, max_value=maximum, allow_nan=False, allow_infinity=False)


def out_of_range_integers(item):
    minimum, maximum = limits(item)
    return st.integers(max_value=minimum - 1) | st.integers(min_value=maximum + 1, max_value=maximum * 10**6)


@pytest.mark.parametrize("config_class, item", FLOAT_FIELDS + INT_FIELDS + LIST_FIELDS)
def test_every_number_field_has_both_limits(config_class, item):
    minimum, maximum = limits(item)
    assert minimum is not None and maximum is not None
    assert math.isfinite(maximum)
    default = getattr(config_class(), item.name)
    for part in default if isinstance(default, tuple) else (default,):
        assert minimum <= part <= maximum


@FAST
@pytest.mark.parametrize("config_class, item", FLOAT_FIELDS)
@given(value=NON_FINITE)
def test_non_finite_floats_are_refused_in_python_flags_and_presets(config_class, item, value):
    message = assert_refused_naming(item, lambda: resolve(config_class, overrides={item.name: value}))
    assert "finite" in message
    assert_refused_naming(item, lambda: parse_flags(config_class, [f"{flag(item)}={value}"]))
    assert_refused_naming(item, lambda: resolve_preset(config_class, f"{item.name} = {toml_value(value)}\n"))


@FAST
@pytest.mark.parametrize("config_class, item", FLOAT_FIELDS)
@given(data=st.data())
def test_out_of_range_floats_are_refused(config_class, item, data):
    value = data.draw(out_of_range_floats(item))
    assert_refused_naming(item, lambda: check_value(item, value))
    assert_refused_naming(item, lambda: parse_flags(config_class, [f"{flag(item)}={value!r}"]))
    assert_refused_naming(item, lambda: resolve_preset(config_class, f"{item.name} = {toml_value(value)}\n"))


@FAST
@pytest.mark.parametrize("config_class, item", FLOAT_FIELDS)
@given(data=st.data())
def test_in_range_floats_are_accepted(config_class, item, data):
    value = data.draw(in_range_floats(item))
    check_value(item, value)
    if item.name not in ("validation_fraction", "test_fraction"):  # their sum has its own limit
        assert getattr(resolve(config_class, overrides={item.name: value}), item.name) == value


@FAST
@pytest.mark.parametrize("config_class, item", INT_FIELDS)
@given(data=st.data())
def test_out_of_range_integers_are_refused(config_class, item, data):
    value = data.draw(out_of_range_integers(item))
    assert_refused_naming(item, lambda: resolve(config_class, overrides={item.name: value}))
    assert_refused_naming(item, lambda: parse_flags(config_class, [f"{flag(item)}={value}"]))
    if -(2**63) <= value < 2**63:  # TOML integers are 64-bit
        assert_refused_naming(item, lambda: resolve_preset(config_class, f"{item.name} = {value}\n"))


@FAST
@pytest.mark.parametrize("config_class, item", INT_FIELDS)
@given(data=st.data())
def test_in_range_integers_are_accepted(config_class, item, data):
    minimum, maximum = limits(item)
    value = data.draw(st.integers(min_value=minimum, max_value=maximum))
    check_value(item, value)
    if item.name != "cpu_devices":  # more than one needs --strategy mirrored
        assert getattr(resolve(config_class, overrides={item.name: value}), item.name) == value


@FAST
@pytest.mark.parametrize("config_class, item", LIST_FIELDS)
@given(data=st.data())
def test_lists_with_a_part_out_of_range_are_refused(config_class, item, data):
    minimum, maximum = limits(item)
    good = st.integers(min_value=minimum, max_value=maximum)
    bad = st.integers(max_value=minimum - 1) | st.integers(min_value=maximum + 1, max_value=2**62)
    parts = data.draw(st.lists(good, max_size=4))
    parts.insert(data.draw(st.integers(0, len(parts))), data.draw(bad))
    value = tuple(parts)
    assert_refused_naming(item, lambda: resolve(config_class, overrides={item.name: value}))
    assert_refused_naming(item, lambda: resolve_preset(config_class, f"{item.name} = {toml_value(value)}\n"))


@FAST
@pytest.mark.parametrize("config_class, item", LIST_FIELDS)
@given(data=st.data())
def test_lists_in_range_are_accepted(config_class, item, data):
    minimum, maximum = limits(item)
    # The TextCNN's convolution widths must also be distinct (one branch per width).
    unique = item.name == "kernel_sizes"
    parts = st.lists(st.integers(min_value=minimum, max_value=maximum), min_size=1, max_size=5, unique=unique)
    value = tuple(data.draw(parts))
    assert getattr(resolve(config_class, overrides={item.name: value}), item.name) == value


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "+inf", "1e400", "-1e400"])
def test_a_non_finite_learning_rate_from_a_flag_names_the_value(text):
    with pytest.raises(UsageError) as excinfo:
        parse_flags(TextCNNConfig, [f"--learning-rate={text}"])
    assert "Expected --learning-rate to be a finite number" in str(excinfo.value)


def test_an_integer_too_large_for_a_float_is_refused_not_an_overflow():
    with pytest.raises(UsageError) as excinfo:
        resolve(TextCNNConfig, overrides={"learning_rate": 10**400})
    assert "--learning-rate" in str(excinfo.value)


def test_the_largest_seed_is_one_that_scikit_learn_and_numpy_take():
    import numpy as np
    from sklearn import model_selection

    indices = np.arange(20)
    model_selection.train_test_split(indices, test_size=0.5, random_state=LARGEST_SEED)
    np.random.RandomState(LARGEST_SEED)
    with pytest.raises(ValueError):
        model_selection.train_test_split(indices, test_size=0.5, random_state=LARGEST_SEED + 1)
    with pytest.raises(UsageError) as excinfo:
        resolve(TextCNNConfig, overrides={"seed": LARGEST_SEED + 1})
    assert "--seed <= 4294967295" in str(excinfo.value)



@pytest.mark.parametrize("key, value", [("min", math.nan), ("max", math.inf), ("step", math.nan), ("step", math.inf)])
def test_non_finite_bounds_of_a_tune_range_are_refused(key, value):
    from kerastrain.search import search_space

    bounds = {"min": 0.1, "max": 0.5, key: value}
    with pytest.raises(UsageError) as excinfo:
        search_space.parse_search_space({"dropout": bounds}, TextCNNConfig, "preset.toml")
    assert "[tune] dropout in preset.toml" in str(excinfo.value)
