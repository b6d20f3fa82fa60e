"""Optimizers and learning-rate schedules by name."""

from kerastrain.backend import keras
from kerastrain.errors import UsageError


def build_schedule(schedule, learning_rate, decay_steps=1000, decay_rate=0.5):
    """A learning rate, constant or decaying with the training step.

    Args:
        schedule: `"constant"`; `"exponential"` (`lr * rate ** (step / steps)`);
            `"inverse_time"` (`lr / (1 + rate * step / steps)`); `"cosine"` (from
            `lr` to 0 over `decay_steps`); or `"step"` (`lr` times `rate` after
            every `decay_steps` steps).
        learning_rate: the initial learning rate.
        decay_steps: the schedule's step scale. Defaults to `1000`.
        decay_rate: the schedule's decay factor. Defaults to `0.5`.

    Returns:
        A float or a `keras.optimizers.schedules.LearningRateSchedule`.
    """
    schedules = keras.optimizers.schedules
    if schedule == "constant":
        return learning_rate
    if schedule == "exponential":
        return schedules.ExponentialDecay(learning_rate, decay_steps, decay_rate)
    if schedule == "inverse_time":
        return schedules.InverseTimeDecay(learning_rate, decay_steps, decay_rate)
    if schedule == "cosine":
        return schedules.CosineDecay(learning_rate, decay_steps)
    if schedule == "step":
        return schedules.ExponentialDecay(learning_rate, decay_steps, decay_rate, staircase=True)
    raise UsageError(
        "Expected --schedule to be one of constant, exponential, inverse_time, cosine, step. "
        f"Received: schedule={schedule!r}"
    )


def build_optimizer(
    name,
    learning_rate,
    momentum=0.9,
    schedule="constant",
    decay_steps=1000,
    decay_rate=0.5,
    clipnorm=0.0,
):
    """An optimizer by name, with a learning-rate schedule and gradient clipping.

    Args:
        name: `"sgd"`, `"momentum"` (SGD with momentum), `"nesterov"` (SGD with
            Nesterov momentum), `"adagrad"`, `"rmsprop"` or `"adam"`.
        learning_rate: the initial learning rate.
        momentum: momentum of `"momentum"` and `"nesterov"`. Defaults to `0.9`.
        schedule: see `build_schedule`. Defaults to `"constant"`.
        decay_steps: see `build_schedule`. Defaults to `1000`.
        decay_rate: see `build_schedule`. Defaults to `0.5`.
        clipnorm: if positive, each gradient is clipped to this L2 norm.
            Defaults to `0.0`.

    Returns:
        A `keras.optimizers.Optimizer`.

    Example:

    ```python
    optimizer = build_optimizer("nesterov", 0.01, schedule="cosine", decay_steps=500)
    ```
    """
    rate = build_schedule(schedule, learning_rate, decay_steps, decay_rate)
    clipping = {"clipnorm": clipnorm} if clipnorm else {}
    optimizers = keras.optimizers
    if name == "sgd":
        return optimizers.SGD(rate, **clipping)
    if name == "momentum":
        return optimizers.SGD(rate, momentum=momentum, **clipping)
    if name == "nesterov":
        return optimizers.SGD(rate, momentum=momentum, nesterov=True, **clipping)
    if name == "adagrad":
        return optimizers.Adagrad(rate, **clipping)
    if name == "rmsprop":
        return optimizers.RMSprop(rate, **clipping)
    if name == "adam":
        return optimizers.Adam(rate, **clipping)
    raise UsageError(
        "Expected --optimizer to be one of sgd, momentum, nesterov, adagrad, rmsprop, adam. "
        f"Received: optimizer={name!r}"
    )


def optimizer_from_config(config, steps_per_epoch=None):
    """The optimizer that a recipe's config names, with its schedule and clipping.

    Args:
        config: a `TrainingConfig` (or subclass).
        steps_per_epoch: optimizer updates in one epoch
            (`tf_data.TrainingInputs.steps_per_epoch`), which `--decay-steps 0`
            needs. Defaults to `None`.

    Returns:
        A `keras.optimizers.Optimizer`.

    Raises:
        ValueError: if `config.decay_steps` is 0 and `steps_per_epoch` is not given.
    """
    return build_optimizer(
        config.optimizer,
        config.learning_rate,
        momentum=config.momentum,
        schedule=config.schedule,
        decay_steps=planned_decay_steps(config.decay_steps, config.epochs, steps_per_epoch),
        decay_rate=config.decay_rate,
        clipnorm=config.clipnorm,
    )


def planned_decay_steps(decay_steps, epochs, steps_per_epoch):
    """`decay_steps`, or with `0` every step the run plans: `epochs x steps_per_epoch`.

    Raises:
        ValueError: if `decay_steps` is 0 and `steps_per_epoch` is `None`.
    """
    if decay_steps:
        return decay_steps
    if steps_per_epoch is None:
        raise ValueError("decay_steps=0 decays over the whole run, which needs steps_per_epoch.")
    return max(1, epochs * steps_per_epoch)
