"""Custom layers of the model builders, registered so that saved models reload."""

from kerastrain.backend import keras, tf


@keras.saving.register_keras_serializable(package="kerastrain")
class WeightedBag(keras.layers.Layer):
    """Sums vectors with per-position weights, divided by the weights' L2 norm.

    With n-gram embeddings as the vectors and IDF values as the weights, the
    output is the embedding of the text's L2-normalized TF-IDF vector: a linear
    model on the same features as TF-IDF + logistic regression. Weight-0
    positions (padding) add nothing.

    Call arguments:
        inputs: a list `[vectors, weights]`, shapes `(batch, length, dim)` and
            `(batch, length, 1)`.

    Returns:
        A tensor of shape `(batch, dim)`.
    """

    def call(self, inputs):
        vectors, weights = inputs
        weights = tf.cast(weights, vectors.dtype)
        total = tf.reduce_sum(vectors * weights, axis=1)
        norm = tf.sqrt(tf.reduce_sum(tf.square(weights), axis=1) + 1e-6)
        return total / norm
