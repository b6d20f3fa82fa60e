"""Optimizers and learning-rate schedules by name."""

import pytest

from kerastrain import optimizers
from kerastrain.backend import keras
from kerastrain.errors import UsageError


@pytest.mark.parametrize(
    "name, class_name, momentum, nesterov",
    [
        ("sgd", "SGD", 0.0, False),
        ("momentum", "SGD", 0.8, False),
        ("nesterov", "SGD", 0.8, True),
        ("adagrad", "Adagrad", None, None),
        ("rmsprop", "RMSprop", None, None),
        ("adam", "Adam", None, None),
    ],
)
def test_build_optimizer(name, class_name, momentum, nesterov):
    optimizer = optimizers.build_optimizer(name, 0.05, momentum=0.8)
    assert isinstance(optimizer, getattr(keras.optimizers, class_name))
    config = optimizer.get_config()
    assert config["learning_rate"] == pytest.approx(0.05)
    assert config["clipnorm"] is None
    if momentum is not None:
        assert config["momentum"] == pytest.approx(momentum)
        assert config["nesterov"] is nesterov


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_build_optimizer_clipnorm(name):
    assert optimizers.build_optimizer(name, 0.01, clipnorm=1.5).get_config()["clipnorm"] == pytest.approx(1.5)


def test_build_optimizer_with_a_schedule():
    optimizer = optimizers.build_optimizer("adam", 0.1, schedule="cosine", decay_steps=10)
    assert optimizer.get_config()["learning_rate"]["class_name"] == "CosineDecay"


@pytest.mark.parametrize(
    "build, name, message",
    [
        (optimizers.build_optimizer, "adamw", "--optimizer.*'adamw'"),
        (optimizers.build_schedule, "linear", "--schedule.*'linear'"),
    ],
    ids=["optimizer", "schedule"],
)
def test_unknown_name_raises(build, name, message):
    with pytest.raises(UsageError, match=message):
        build(name, 0.1)


def test_constant_schedule_is_the_number():
    assert optimizers.build_schedule("constant", 0.1) == 0.1


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("exponential", {0: 0.1, 5: 0.1 * 0.5**0.5, 10: 0.05, 20: 0.025}),
        ("inverse_time", {0: 0.1, 5: 0.1 / 1.25, 10: 0.1 / 1.5, 20: 0.05}),
        ("cosine", {0: 0.1, 5: 0.05, 10: 0.0, 20: 0.0}),
        ("step", {0: 0.1, 9: 0.1, 10: 0.05, 19: 0.05, 25: 0.025}),
    ],
)
def test_schedule_values(schedule, expected):
    rate = optimizers.build_schedule(schedule, 0.1, decay_steps=10, decay_rate=0.5)
    assert isinstance(rate, keras.optimizers.schedules.LearningRateSchedule)
    for step, value in expected.items():
        assert float(rate(step)) == pytest.approx(value, rel=1e-5, abs=1e-7), step
