"""Training and test functions for `fit` and `evaluate` that trace the model's step once.

With `steps_per_execution` above 1, tf-keras runs the steps of one call in a
`tf.range` loop whose body assigns the step's logs to a variable that is
undefined before the loop. AutoGraph then stages the body once in a scratch
graph, only to learn that variable's type, and stages it again for real: the
whole training step (forward pass, gradients, optimizer update, and its XLA
function) is traced twice before the first batch trains. On a small dataset
that second trace is a good part of the first epoch.

The functions here run the same step the same number of times, but carry
nothing through the loop: after it they read the model's metrics, which is
what tf-keras's standard `train_step` and `test_step` return. They also decide
whether the step is XLA-compiled when the function is built, where tf-keras
decides when it is first traced; that lets `training.compile_only_training_step`
keep XLA for the training step alone. They are used only where the model's
step is one of those and tf-keras would run its steps in its own graph loop;
elsewhere (eager runs, a `ParameterServerStrategy` coordinator, a custom step)
the model keeps tf-keras's functions.
"""

import types

from kerastrain import accumulation
from kerastrain.backend import keras, tf

# Steps known to return `model.get_metrics_result()`, so that reading the
# metrics after the loop gives the logs of the last step.
METRICS_RESULT_TRAIN_STEPS = (keras.Model.train_step, accumulation.GradientAccumulationModel.train_step)
METRICS_RESULT_TEST_STEPS = (keras.Model.test_step,)


def trace_steps_once(model):
    """Makes `fit` and `evaluate` of the compiled `model` trace its training and test steps once.

    Call it after `model.compile`; it replaces the model's
    `make_train_function` and `make_test_function`, which still build
    tf-keras's own functions where these do not apply (see the module's
    docstring). Compiling the model again keeps the replacements.

    Args:
        model: a `keras.Model`.

    Returns:
        `model`.
    """
    model.make_train_function = types.MethodType(make_train_function, model)
    model.make_test_function = types.MethodType(make_test_function, model)
    return model


def make_train_function(model, force=False):
    """`keras.Model.make_train_function`, with the training step traced once where it applies."""
    if model.train_function is not None and not force:
        return model.train_function
    if not runs_steps_in_graph(model) or type(model).train_step not in METRICS_RESULT_TRAIN_STEPS:
        return type(model).make_train_function(model, force=force)
    # tf-keras keeps its traced training function in `train_tf_function` too.
    model.train_function = model.train_tf_function = traced_once(model, model.train_step, model._train_counter)
    return model.train_function


def make_test_function(model, force=False):
    """`keras.Model.make_test_function`, with the test step traced once where it applies."""
    if model.test_function is not None and not force:
        return model.test_function
    if not runs_steps_in_graph(model) or type(model).test_step not in METRICS_RESULT_TEST_STEPS:
        return type(model).make_test_function(model, force=force)
    model.test_function = traced_once(model, model.test_step, model._test_counter)
    return model.test_function


def traced_once(model, step, counter):
    """The `tf.function` of `steps_then_metrics`, marked as deciding XLA when built."""
    function = tf.function(steps_then_metrics(model, step, counter), reduce_retracing=True)
    function.xla_decided_when_built = True
    return function


def decides_xla_when_built(function):
    """Whether `function` was built here, and so XLA-compiles its step as the model said when it was built."""
    return getattr(function, "xla_decided_when_built", False)


def runs_steps_in_graph(model):
    """Whether tf-keras would run `model`'s steps in a traced function of its own (not eagerly, not scheduled)."""
    # Asked of the strategy: `fit` makes a parameter-server strategy's coordinator only when it starts.
    return (
        not model.run_eagerly
        and not model.distribute_strategy._should_use_with_coordinator
        and model._steps_per_execution is not None
        and not model.autotune_steps_per_execution
    )


def steps_then_metrics(model, step, counter):
    """A function of a data iterator that runs `step` `steps_per_execution` times, then returns the metrics.

    Each step runs as tf-keras runs it: on the next batch, under the model's
    strategy, XLA-compiled when the model is, and counted in `counter` once it
    has finished.
    """

    def run_step(data):
        outputs = step(data)
        with tf.control_dependencies(first_tensor(outputs)):
            counter.assign_add(1)
        return outputs

    if model.jit_compile:
        run_step = tf.function(run_step, jit_compile=True, reduce_retracing=True)

    def run_steps(iterator):
        for _ in tf.range(model._steps_per_execution):
            model.distribute_strategy.run(run_step, args=(next(iterator),))
        return model.get_metrics_result()

    return run_steps


def first_tensor(outputs):
    """A list of the first tensor in `outputs`, as a control dependency that waits for the step; or `[]`."""
    for value in tf.nest.flatten(outputs, expand_composites=True):
        if isinstance(value, tf.Tensor):
            return [value]
    return []
