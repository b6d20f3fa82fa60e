"""Strategies that need no cluster: building them by name, their helpers, warnings filtered by name."""

import logging

import pytest

from kerastrain.backend import tf
from kerastrain.distribute import strategies
from kerastrain.errors import UsageError
from kerastrain.models import build_mlp


def record(message):
    return logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, message, None, None)


def test_only_the_checkpoint_savers_own_retracing_warning_is_dropped():
    saver = (
        "5 out of the last 5 calls to <function MultiDeviceSaver.save.<locals>.tf_function_save at 0x7f74c8591120> "
        "triggered tf.function retracing."
    )
    other = "5 out of the last 5 calls to <function train_function at 0x7f74c8591120> triggered tf.function retracing."
    assert strategies.drop_checkpoint_retracing_warning(record(saver)) is False
    assert strategies.drop_checkpoint_retracing_warning(record(other)) is True


def test_one_process_strategies_have_one_worker_and_no_cluster():
    from kerastrain.backend import tf

    strategy = tf.distribute.get_strategy()
    assert strategies.worker_count(strategy) == 1
    assert strategies.describe_cluster(strategy) == {}
    assert strategies.has_progress_bar(strategy)


def test_default_strategy():
    strategy = strategies.build_strategy("default")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert not tf.distribute.has_strategy()


def test_one_device_strategy():
    strategy = strategies.build_strategy("one_device")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert strategy.num_replicas_in_sync == 1
    expected = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
    assert strategy.extended.worker_devices[0].endswith(expected)


def test_model_built_in_a_one_device_scope(float32_policy):
    strategy = strategies.build_strategy("one_device")
    with strategy.scope():
        model = build_mlp(4, 2, hidden_units=(3,))
    assert model.distribute_strategy is strategy


def test_unknown_strategy_raises():
    with pytest.raises(UsageError) as excinfo:
        strategies.build_strategy("tpu")
    message = str(excinfo.value)
    assert "--strategy" in message
    assert "'tpu'" in message
    assert "mirrored" in message
