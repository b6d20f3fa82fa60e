"""TextCNN (Kim 2014), with an optional linear bag-of-n-grams branch and pretrained embeddings."""

import numpy as np

from kerastrain.backend import keras
from kerastrain.models.checkpointing import RecomputedBlock
from kerastrain.models.layers import ExampleDropout, WeightedBag


def build_textcnn(
    vocabulary_size,
    sequence_length,
    num_classes,
    embedding_dim=128,
    filters=128,
    kernel_sizes=(3, 4, 5),
    dropout=0.5,
    l2=0.0,
    ngram_vocabulary_size=0,
    ngram_sequence_length=0,
    ngram_embedding_dim=32,
    ngram_weights=None,
    ngram_initial_weights=None,
    initial_biases=None,
    ngram_l2=0.0,
    ngram_example_dropout=0.0,
    embedding_matrix=None,
    embedding_trainable=True,
    gradient_checkpointing=False,
):
    """Builds a TextCNN classifier with the Functional API.

    Token ids are embedded, convolved by one `Conv1D` per kernel size, max-pooled
    over time, concatenated, dropped out and classified by a softmax layer
    (Kim 2014). With `ngram_vocabulary_size > 0` a second input, the ids of the
    text's word n-grams, feeds a linear branch that joins the pooled features
    before the classifier: on short texts n-gram features are strong (Wang and
    Manning 2012), and the network learns how much to rely on each branch. With
    one fixed weight per n-gram (IDF values, say) the n-grams are embedded and
    summed with those weights over their L2 norm: a linear model on TF-IDF
    features. With one fixed weight per n-gram and class (naive-Bayes log-count
    ratios, one column per class), each class gets a trainable scalar per
    n-gram, starting at 1, and the branch outputs, per class, the sum over the
    text's n-grams of ratio times weight: with binary n-gram ids (each once) that
    is one logistic regression per class on NB-scaled features (NBSVM's
    features), started from the naive-Bayes classifier; the classifier starts
    with a weight of 0.1 from each class's score to that class's logit and 0
    to the others. Given `ngram_initial_weights` (a fitted NB-weighted logistic
    regression, see `kerastrain.ngram_start`), the weights start there instead
    and each class's score goes into its logit with weight 1, so the branch
    starts with that model's logits.

    Args:
        vocabulary_size: number of token ids, padding (0) and unknown (1) included.
        sequence_length: the longest token-id sequence the model is meant
            for; at least the largest kernel size. The model takes any length
            from the largest kernel size up.
        num_classes: number of classes of the softmax output.
        embedding_dim: size of the word embeddings. Defaults to `128`.
        filters: filters per kernel size. Defaults to `128`.
        kernel_sizes: widths of the convolutions. Defaults to `(3, 4, 5)`.
        dropout: dropout rate before the classifier. Defaults to `0.5`.
        l2: L2 penalty on the classifier's kernel. Defaults to `0.0`.
        ngram_vocabulary_size: number of n-gram ids of the second input; `0`
            leaves it out. Defaults to `0`.
        ngram_sequence_length: the longest n-gram-id sequence of the second
            input (it takes any length). Defaults to `0`.
        ngram_embedding_dim: size of the n-gram embeddings when `ngram_weights`
            has one column. The branch is a linear model, so a few dimensions
            suffice, and a narrow table keeps the optimizer's per-step work
            small. Defaults to `32`.
        ngram_weights: fixed weights of the n-gram ids: a vector
            `(ngram_vocabulary_size,)`, such as IDF values, or a matrix
            `(ngram_vocabulary_size, columns)` with two or more columns, such as
            the log-count ratios of `TextVectorizer(log_count_ratios=True)`
            (then the branch has one output per column and
            `ngram_embedding_dim` is not used). Id 0 is padding and gets weight
            0 whatever is given. `None` weighs every n-gram 1 (a plain
            normalized bag). Defaults to `None`.
        ngram_initial_weights: with per-class `ngram_weights`, the starting
            values of the trainable weight per n-gram and class, an array of
            the same shape; `None` starts them at 1. Defaults to `None`.
        initial_biases: starting biases of the classifier, `(num_classes,)`;
            `None` starts them at 0. Defaults to `None`.
        ngram_l2: L2 penalty on the per-class n-gram weights, such as the one
            that matches a logistic regression's `C`. Defaults to `0.0`.
        ngram_example_dropout: in training, the share of examples whose
            n-gram branch output is zeroed (`ExampleDropout`), so that the
            convolutions learn to classify them alone. Defaults to `0.0`.
        embedding_matrix: initial word embeddings, an array
            `(vocabulary_size, embedding_dim)` such as pretrained vectors from
            `kerastrain.embeddings.load_embedding_matrix`; `None` starts from
            random ones. Defaults to `None`.
        embedding_trainable: whether training updates the word embeddings
            (Kim's CNN-non-static); `False` keeps them fixed (CNN-static).
            Defaults to `True`.
        gradient_checkpointing: make each convolution branch (convolution and
            max-pooling) a `RecomputedBlock`, whose activations are recomputed
            in the backward pass instead of kept. Defaults to `False`.

    Returns:
        An uncompiled `keras.Model` with inputs named `"tokens"` (and `"ngrams"`)
        whose float32 output holds the class probabilities.

    Example:

    ```python
    model = build_textcnn(vocabulary_size=20000, sequence_length=64, num_classes=2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    ```
    """
    if sequence_length < max(kernel_sizes):
        raise ValueError(
            "Expected sequence_length >= the largest kernel size. "
            f"Received: sequence_length={sequence_length}, kernel_sizes={tuple(kernel_sizes)}"
        )
    layers = keras.layers
    # Any length from the largest kernel size up: training batches are cut to
    # the padding they need (see kerastrain.length_buckets).
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    if embedding_matrix is not None:
        embedding_matrix = np.asarray(embedding_matrix, np.float32)
        if embedding_matrix.shape != (vocabulary_size, embedding_dim):
            raise ValueError(
                f"Expected embedding_matrix of shape ({vocabulary_size}, {embedding_dim}). "
                f"Received: {embedding_matrix.shape}"
            )
    embedding = layers.Embedding(vocabulary_size, embedding_dim, trainable=embedding_trainable, name="embedding")
    embedded = embedding(tokens)
    pooled = []
    for kernel_size in kernel_sizes:
        branch = [
            layers.Conv1D(filters, kernel_size, activation="relu", name=f"conv_{kernel_size}"),
            layers.GlobalMaxPooling1D(name=f"max_pool_{kernel_size}"),
        ]
        if gradient_checkpointing:
            pooled.append(RecomputedBlock(branch, name=f"branch_{kernel_size}")(embedded))
        else:
            pooled.append(branch[1](branch[0](embedded)))
    features = pooled[0] if len(pooled) == 1 else layers.Concatenate(name="pooled")(pooled)
    features = layers.Dropout(dropout, name="dropout")(features)
    inputs = [tokens]
    if ngram_vocabulary_size:
        if ngram_weights is None:
            weights = np.ones((ngram_vocabulary_size, 1), np.float32)
        else:
            weights = np.asarray(ngram_weights, np.float32)
            weights = weights[:, None] if weights.ndim == 1 else weights
        if weights.ndim != 2 or weights.shape[0] != ngram_vocabulary_size:
            raise ValueError(
                f"Expected ngram_weights of shape ({ngram_vocabulary_size},) or ({ngram_vocabulary_size}, "
                f"columns). Received: {np.shape(ngram_weights)}"
            )
        weights = weights.copy()
        weights[0] = 0.0  # padding
        per_column = weights.shape[1] > 1
        if ngram_initial_weights is not None and (not per_column or np.shape(ngram_initial_weights) != weights.shape):
            raise ValueError(
                f"Expected ngram_initial_weights of the per-class ngram_weights' shape {weights.shape}. "
                f"Received: {np.shape(ngram_initial_weights)}"
            )
        ngrams = keras.Input(shape=(None,), dtype="int32", name="ngrams")
        if per_column:
            # One weight per n-gram and column, starting at 1: with log-count ratios
            # as the fixed weights the branch starts as the naive-Bayes classifier.
            ngram_embedding = layers.Embedding(
                ngram_vocabulary_size,
                weights.shape[1],
                embeddings_initializer="ones",
                embeddings_regularizer=keras.regularizers.L2(ngram_l2) if ngram_l2 else None,
                name="ngram_embedding",
            )
            ngram_vectors = ngram_embedding(ngrams)
        else:
            ngram_vectors = layers.Embedding(
                ngram_vocabulary_size, ngram_embedding_dim, name="ngram_embedding"
            )(ngrams)
        weight_table = layers.Embedding(
            ngram_vocabulary_size, weights.shape[1], trainable=False, name="ngram_weight"
        )
        bag = WeightedBag(normalize=not per_column, name="ngram_bag")([ngram_vectors, weight_table(ngrams)])
        if ngram_example_dropout:
            bag = ExampleDropout(ngram_example_dropout, name="ngram_example_dropout")(bag)
        features = layers.Concatenate(name="features")([features, bag])
        inputs.append(ngrams)
    logits = layers.Dense(
        num_classes,
        kernel_regularizer=keras.regularizers.L2(l2) if l2 else None,
        name="logits",
    )(features)
    # Softmax in float32 under a mixed policy: float16 probabilities underflow.
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    model = keras.Model(inputs, outputs, name="textcnn")
    if ngram_vocabulary_size:
        weight_table.set_weights([weights])
        if per_column:
            classifier = model.get_layer("logits")
            kernel, bias = classifier.get_weights()
            if ngram_initial_weights is None:
                # Column c of the branch scores class c: the classifier starts by adding a
                # tenth of it (the size of its random weights) to class c's logit only. A
                # random start can point it the wrong way, which a short run on a small
                # dataset does not undo.
                kernel[-weights.shape[1]:] = 0.1 * np.eye(weights.shape[1], num_classes)
            else:
                # A fitted linear model's weights: its scores are the logits as they are.
                ngram_embedding.set_weights([np.asarray(ngram_initial_weights, np.float32)])
                kernel[-weights.shape[1]:] = np.eye(weights.shape[1], num_classes)
            if initial_biases is not None:
                bias = np.asarray(initial_biases, np.float32)
            classifier.set_weights([kernel, bias])
    if embedding_matrix is not None:
        # Set after building, not as an initializer: a Constant initializer would
        # write the whole matrix into the saved model's config.
        embedding.set_weights([embedding_matrix])
    return model
