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


@keras.saving.register_keras_serializable(package="kerastrain")
class ExampleDropout(keras.layers.Layer):
    """In training, zeroes the whole input of a random share of the examples, without rescaling the rest.

    Applied to one branch's output in a model that adds several branches'
    scores, it makes the other branches learn to classify those examples on
    their own, instead of only correcting what the dropped branch gets wrong.
    Outside training it passes its input through unchanged.

    Args:
        rate: the share of examples whose input is zeroed, in `[0, 1)`.

    Call arguments:
        inputs: a tensor whose first axis is the batch.
        training: whether the call is in training. Defaults to `None`.

    Returns:
        A tensor of the input's shape and dtype.
    """

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Expected rate in [0, 1). Received: rate={rate}")
        self.rate = rate

    def call(self, inputs, training=None):
        if not training or not self.rate:
            return inputs
        shape = tf.concat([tf.shape(inputs)[:1], tf.ones([tf.rank(inputs) - 1], tf.int32)], axis=0)
        keep = tf.random.uniform(shape) >= self.rate
        return inputs * tf.cast(keep, inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}
