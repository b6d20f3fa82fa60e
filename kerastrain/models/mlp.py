"""A multilayer perceptron for feature vectors."""

from kerastrain.backend import keras
from kerastrain.models.checkpointing import RecomputedBlock


def build_mlp(
    input_dim,
    num_classes,
    hidden_units=(256, 128),
    activation="relu",
    initializer="he_normal",
    batch_normalization=False,
    dropout=0.0,
    l1=0.0,
    l2=0.0,
    gradient_checkpointing=False,
):
    """Builds a multilayer perceptron classifier with the Functional API.

    Each hidden layer is `Dense`, then optionally `BatchNormalization` (before the
    activation, as in Ioffe and Szegedy 2015), the activation, then optionally
    `Dropout`.

    Args:
        input_dim: number of input features.
        num_classes: number of classes of the softmax output.
        hidden_units: sizes of the hidden layers. Defaults to `(256, 128)`.
        activation: activation of the hidden layers. Defaults to `"relu"`.
        initializer: initializer of the hidden kernels: `"glorot_uniform"`,
            `"glorot_normal"`, `"he_uniform"` or `"he_normal"` (He suits ReLU,
            Glorot suits tanh and sigmoid). Defaults to `"he_normal"`.
        batch_normalization: whether to normalize each hidden layer's batch.
            Defaults to `False`.
        dropout: dropout rate after each hidden layer. Defaults to `0.0`.
        l1: L1 penalty on the hidden kernels. Defaults to `0.0`.
        l2: L2 penalty on the hidden kernels. Defaults to `0.0`.
        gradient_checkpointing: make each hidden layer (with its batch
            normalization, activation and dropout) a `RecomputedBlock`, whose
            activations are recomputed in the backward pass instead of kept.
            Defaults to `False`.

    Returns:
        An uncompiled `keras.Model` with one input named `"features"` whose
        float32 output holds the class probabilities.

    Example:

    ```python
    model = build_mlp(input_dim=64, num_classes=10, hidden_units=(128,))
    ```
    """
    layers = keras.layers
    regularizer = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
    features = keras.Input(shape=(input_dim,), name="features")
    hidden = features
    for index, units in enumerate(hidden_units):
        block = [
            layers.Dense(
                units,
                kernel_initializer=initializer,
                kernel_regularizer=regularizer,
                use_bias=not batch_normalization,  # BatchNormalization has its own offset.
                name=f"dense_{index}",
            )
        ]
        if batch_normalization:
            block.append(layers.BatchNormalization(name=f"batch_normalization_{index}"))
        block.append(layers.Activation(activation, name=f"{activation}_{index}"))
        if gradient_checkpointing:
            hidden = RecomputedBlock(block, dropout=dropout, name=f"hidden_{index}")(hidden)
            continue
        if dropout:
            block.append(layers.Dropout(dropout, name=f"dropout_{index}"))
        for layer in block:
            hidden = layer(hidden)
    logits = layers.Dense(num_classes, kernel_initializer="glorot_uniform", name="logits")(hidden)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(features, outputs, name="mlp")
