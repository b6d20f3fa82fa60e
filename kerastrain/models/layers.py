"""Custom layers of the model builders, registered so that saved models reload."""

from kerastrain.backend import keras, tf


@keras.saving.register_keras_serializable(package="kerastrain")
class WeightedBag(keras.layers.Layer):
    """Sums vectors with per-position weights, divided by the weights' L2 norm.

    With n-gram embeddings as the vectors and IDF values as the weights, the
    output is the embedding of the text's L2-normalized TF-IDF vector: a linear
    model on the same features as TF-IDF + logistic regression. With one weight
    per column (`weights` as wide as `vectors`), each column is its own weighted
    sum, normalized by its own weights: with one trainable scalar per n-gram
    and class as the vectors and the naive-Bayes log-count ratios as the
    weights, column `c` is a linear model on the text's ratio-scaled binary
    n-gram features for class `c` (Wang and Manning 2012). Weight-0 positions
    (padding) add nothing.

    Args:
        normalize: divide by the weights' L2 norm; `False` keeps the plain
            weighted sum. Defaults to `True`.

    Call arguments:
        inputs: a list `[vectors, weights]`, shapes `(batch, length, dim)` and
            `(batch, length, 1)` or `(batch, length, dim)`.

    Returns:
        A tensor of shape `(batch, dim)`.
    """

    def __init__(self, normalize=True, **kwargs):
        super().__init__(**kwargs)
        self.normalize = normalize

    def call(self, inputs):
        vectors, weights = inputs
        weights = tf.cast(weights, vectors.dtype)
        total = tf.reduce_sum(vectors * weights, axis=1)
        if not self.normalize:
            return total
        norm = tf.sqrt(tf.reduce_sum(tf.square(weights), axis=1) + 1e-6)
        return total / norm

    def get_config(self):
        return {**super().get_config(), "normalize": self.normalize}
