"""Gradient checkpointing: a block of layers whose activations are recomputed in the backward pass.

A training step normally keeps every layer's activations from the forward pass
until the backward pass has used them. `RecomputedBlock` keeps only its input:
in training, its forward pass runs under `tf.recompute_grad`, and the backward
pass runs the block's layers again to get the activations it needs. Memory for
activations then grows with the number of blocks instead of the number of
layers, at the price of a second forward pass through every block.

Three things make the recomputation give exactly the gradients a plain step
gives:

- the block's layers are built before the first call, so that no variable is
  created inside `tf.recompute_grad` (TensorFlow refuses that);
- dropout inside the block draws its mask from a stateless generator with a
  seed drawn once per step outside the recomputed function, so the forward
  pass and its recomputation drop the same units;
- a `BatchNormalization` inside the block updates its moving averages in the
  forward pass only: during the recomputation its momentum is 1, so its
  update adds nothing.

Outside training (evaluation, prediction, a saved model's serving function)
the block is an ordinary stack of layers.
"""

import contextlib

from kerastrain.backend import keras, tf


@keras.saving.register_keras_serializable(package="kerastrain")
class RecomputedBlock(keras.layers.Layer):
    """Runs `layers` in order, then optional dropout; in training, recomputes them in the backward pass.

    Args:
        layers: the block's layers, applied one after the other, not yet
            called on anything.
        dropout: the rate of dropout after the last layer. Defaults to `0.0`.
        **kwargs: passed to `keras.layers.Layer`, such as `name`.

    Call arguments:
        inputs: one tensor.
        training: whether the call is part of a training step. Defaults to
            `None` (not training).

    Example:

    ```python
    block = RecomputedBlock([keras.layers.Dense(512), keras.layers.Activation("relu")], dropout=0.2)
    outputs = block(features, training=True)
    ```
    """

    def __init__(self, layers, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Expected 0 <= dropout < 1. Received: dropout={dropout!r}")
        self.block_layers = list(layers)
        self.dropout = dropout

    def build(self, input_shape):
        shape = tf.TensorShape(input_shape)
        for layer in self.block_layers:
            if not layer.built:
                with tf.name_scope(layer.name):
                    layer.build(shape)
            shape = tf.TensorShape(layer.compute_output_shape(shape))
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape)
        for layer in self.block_layers:
            shape = tf.TensorShape(layer.compute_output_shape(shape))
        return shape

    def call(self, inputs, training=None):
        if not training:
            return self.forward(inputs, training=False)
        seed = dropout_seed() if self.dropout else None
        calls = []

        def forward(block_inputs):
            recomputing = bool(calls)
            calls.append(recomputing)
            with frozen_moving_averages(self.block_layers) if recomputing else contextlib.nullcontext():
                return self.forward(block_inputs, training=True, seed=seed)

        return tf.recompute_grad(forward)(inputs)

    def forward(self, inputs, training, seed=None):
        outputs = inputs
        for layer in self.block_layers:
            outputs = layer(outputs, training=training)
        if training and self.dropout:
            outputs = tf.nn.experimental.stateless_dropout(outputs, self.dropout, seed)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            layers=[keras.layers.serialize(layer) for layer in self.block_layers],
            dropout=self.dropout,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layers"] = [keras.layers.deserialize(layer) for layer in config["layers"]]
        return cls(**config)


def dropout_seed():
    """A stateless-dropout seed for one step: drawn from TensorFlow's seeded generator, per replica."""
    seed = tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        # Replicas run the same graph with the same op seeds; each gets its own masks.
        replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
        seed = seed + tf.stack([replica, tf.zeros_like(replica)])
    return seed


@contextlib.contextmanager
def frozen_moving_averages(layers):
    """Momentum 1 for the `BatchNormalization` layers among `layers`: their updates add nothing."""
    normalizations = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in normalizations]
    for layer in normalizations:
        layer.momentum = 1.0
    try:
        yield
    finally:
        for layer, momentum in zip(normalizations, momenta):
            layer.momentum = momentum
