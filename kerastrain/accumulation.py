"""Gradient accumulation: one optimizer update from several micro-batches.

tf-keras 2.21's optimizers have no accumulation option (Keras 3's
`gradient_accumulation_steps` has no tf-keras counterpart), so the training
step does it. Each step receives `accumulate_steps` micro-batches at once (the
training dataset is batched at `accumulate_steps * batch_size`), runs the
forward and backward pass of one micro-batch after the other, adds up their
gradients, and hands the mean to the optimizer once.

Doing the whole accumulation inside one step, rather than in variables that
carry gradients from one step to the next, means:

- no state outlives a step: nothing to checkpoint, nothing to lose or replay
  when `BackupAndRestore` resumes, and no partial accumulation at an epoch's
  end (the training data repeats, so every step is whole: see
  `tf_data.make_training_inputs`; a shorter batch would still be split and
  weighted correctly);
- the optimizer is called once per step, unconditionally: its `iterations`,
  and so learning-rate schedules, count applied updates; `clipnorm` clips the
  accumulated gradient; under a mixed-precision `LossScaleOptimizer` every
  micro-batch's gradient is unscaled before the sum, and a step in which any
  micro-batch overflowed is skipped as a whole;
- under a distribution strategy each replica accumulates its own share of the
  micro-batches locally, and the optimizer all-reduces (sums) the accumulated
  gradients across replicas exactly once per step, as it does without
  accumulation;
- the step has no data-dependent branch, so XLA and `steps_per_execution` work
  as before.

The price: the input of a whole step (not its activations) is held in memory
at once, and the step's graph holds `accumulate_steps` copies of the forward
and backward pass, so tracing and XLA compilation take longer as it grows.
Layers with batch statistics (`BatchNormalization`) see micro-batches, and
update their moving averages once per micro-batch.
"""

from kerastrain.backend import keras, tf


class GradientAccumulationModel(keras.Model):
    """A functional model that averages the gradients of micro-batches in each step.

    Build it from an existing functional model's inputs and outputs (it shares
    their layers and weights), preferably with `with_gradient_accumulation`.
    Each batch that `fit` gives it is split into `accumulate_steps` consecutive
    micro-batches of equal size (the last ones smaller, or empty, when the
    batch is short); each micro-batch's gradient is weighted by its share of
    the batch's examples, so the update equals the one a single step on the
    whole batch would make.

    Args:
        inputs: the functional model's inputs.
        outputs: the functional model's outputs.
        accumulate_steps: micro-batches per optimizer update, at least 1.
        **kwargs: passed to `keras.Model`, such as `name`.

    Example:

    ```python
    model = GradientAccumulationModel(mlp.inputs, mlp.outputs, accumulate_steps=4)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(features, labels, batch_size=4 * 32)  # 4 micro-batches of 32 per update
    ```
    """

    def __init__(self, inputs, outputs, accumulate_steps, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        if not isinstance(accumulate_steps, int) or accumulate_steps < 1:
            raise ValueError(f"Expected accumulate_steps >= 1. Received: accumulate_steps={accumulate_steps!r}")
        self.accumulate_steps = accumulate_steps

    def train_step(self, data):
        inputs, targets, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        examples = batch_length(inputs)
        size = (examples + self.accumulate_steps - 1) // self.accumulate_steps
        total = None
        metrics = {}
        for index in range(self.accumulate_steps):
            # The next micro-batch starts once the previous one's gradients are
            # done, so TensorFlow's executor does not hold several micro-batches'
            # activations at once (under XLA the compiler orders the step).
            with tf.control_dependencies(flat_tensors(total)):
                part = micro_batch((inputs, targets, sample_weight), index * size, size)
            part_inputs, part_targets, part_weight = part
            with tf.GradientTape() as tape:
                predictions = self(part_inputs, training=True)
                loss = self.compute_loss(part_inputs, part_targets, predictions, part_weight)
            # compute_gradients unscales the gradients of a LossScaleOptimizer.
            gradients = [
                gradient for gradient, _ in self.optimizer.compute_gradients(loss, self.trainable_variables, tape)
            ]
            share = micro_batch_share(batch_length(part_inputs), examples, self.accumulate_steps)
            gradients = [scale_gradient(gradient, share) for gradient in gradients]
            total = gradients if total is None else [add_gradients(a, b) for a, b in zip(total, gradients)]
            metrics = self.compute_metrics(part_inputs, part_targets, predictions, part_weight)
        self.optimizer.apply_gradients(zip(total, self.trainable_variables))
        return metrics


def with_gradient_accumulation(model, accumulate_steps):
    """`model`, made to accumulate the gradients of `accumulate_steps` micro-batches.

    Call it where the model is built, inside the strategy's scope. With
    `accumulate_steps == 1` it returns `model` itself, so training takes exactly
    the path it takes without accumulation.

    Args:
        model: a functional `keras.Model`, not yet compiled.
        accumulate_steps: micro-batches per optimizer update, at least 1.

    Returns:
        `model`, or a `GradientAccumulationModel` sharing its layers and weights.
    """
    if accumulate_steps == 1:
        return model
    return GradientAccumulationModel(model.inputs, model.outputs, accumulate_steps, name=model.name)


def plain_model(model):
    """The plain functional model of `model`, for saving as `model.keras`.

    A `GradientAccumulationModel` only changes how training steps run; what is
    saved, and what `kerastrain.export.predict` loads, is the network alone. Other
    models are returned as they are.
    """
    if not isinstance(model, GradientAccumulationModel):
        return model
    with model.distribute_strategy.scope():
        return keras.Model(model.inputs, model.outputs, name=model.name)


def batch_length(inputs):
    """The number of examples in a batch of `inputs` (a tensor or a structure of them)."""
    return tf.shape(tf.nest.flatten(inputs)[0])[0]


def micro_batch(structure, start, size):
    """Rows `start` to `start + size` of every tensor of `structure` (`None`s kept)."""
    return tf.nest.map_structure(
        lambda tensor: None if tensor is None else tensor[start : start + size], structure
    )


def micro_batch_share(part_examples, examples, accumulate_steps):
    """The weight of a micro-batch's gradient: its share of the step's examples.

    A replica with no examples at all (the short last batch of an epoch under a
    strategy) weights each of its micro-batches equally, so that, as without
    accumulation, it still contributes the regularization losses' gradient.
    """
    part_examples = tf.cast(part_examples, tf.float32)
    examples = tf.cast(examples, tf.float32)
    return tf.where(examples > 0, part_examples / tf.maximum(examples, 1.0), 1.0 / accumulate_steps)


def scale_gradient(gradient, factor):
    if gradient is None:
        return None
    if isinstance(gradient, tf.IndexedSlices):
        values = gradient.values * tf.cast(factor, gradient.values.dtype)
        return tf.IndexedSlices(values, gradient.indices, gradient.dense_shape)
    return gradient * tf.cast(factor, gradient.dtype)


def add_gradients(first, second):
    """The sum of two gradients of one variable; sparse ones stay sparse.

    Sparse (embedding) gradients are concatenated, which the optimizer reads
    as their sum, as it reads one large batch's gradient of the same rows.
    """
    if first is None or second is None:
        return first if second is None else second
    if isinstance(first, tf.IndexedSlices) and isinstance(second, tf.IndexedSlices):
        return tf.IndexedSlices(
            tf.concat([first.values, second.values], axis=0),
            tf.concat([first.indices, second.indices], axis=0),
            first.dense_shape,
        )
    return tf.convert_to_tensor(first) + tf.convert_to_tensor(second)


def flat_tensors(gradients):
    """The tensors of a list of gradients, for control dependencies; none for `None`."""
    if gradients is None:
        return []
    return [tensor for tensor in tf.nest.flatten(gradients, expand_composites=True) if tensor is not None]
