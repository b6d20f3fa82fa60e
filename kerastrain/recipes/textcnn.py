"""Title: Text classification with a TextCNN
Description: a TextCNN (Kim 2014) with a linear bag-of-n-grams branch, trained on labelled texts.

Usage:

    kerastrain train textcnn                              # the bundled SMS spam data
    kerastrain train textcnn --data reviews.csv.gz --text-column body --label-column stars
    kerastrain train textcnn --config sms_textcnn_tune --tune
    python -m kerastrain.recipes.textcnn ...              # the same command

The shared pipeline (`kerastrain.pipeline`) splits the data, trains under the
chosen strategy and precision, and writes the run folder; this file says what
is particular to the TextCNN: its data, its text vectorizers and its model.
"""

import sys

import numpy as np

from kerastrain import cli
from kerastrain.config import TextCNNConfig
from kerastrain.recipe import Recipe

# Load data: a CSV of texts and labels, or a dataset name (`sms`, `imdb`, `20newsgroups`).


def load_examples(config):
    """The labelled texts that `config.data` names."""
    from kerastrain import data

    return data.load_examples(config.data, config.text_column, config.label_column)


# Prepare: token ids for the convolutions and, optionally, n-gram ids for the
# linear branch, both fitted on the training texts only.


def fit_preprocessor(config, train_examples):
    """Token ids and, with `config.ngram_features`, n-gram ids, fitted on the training split.

    With `config.ngram_weighting == "nb"` the n-gram vectorizer also learns each
    n-gram's naive-Bayes log-count ratio per class from the training labels,
    and with `config.ngram_start == "logistic_regression"` scikit-learn fits
    NB-weighted logistic regression on them, the n-gram branch's start.
    With `config.embeddings` the fitted features also carry the word vectors of
    the token vocabulary, transiently: they go into the model's weights, not
    into the pickled preprocessor, and `describe()` says how many words had one.

    Returns:
        A fitted `TextFeatures` whose model inputs are `"tokens"` (and `"ngrams"`).
    """
    from kerastrain.text_vectorization import TextFeatures, TextVectorizer

    vectorizers = {
        "tokens": TextVectorizer(
            "sequences",
            max_tokens=config.max_tokens,
            sequence_length=config.sequence_length,
            min_sequence_length=max(config.kernel_sizes),
            lowercase=config.lowercase,
        )
    }
    if config.ngram_features:
        naive_bayes = config.ngram_weighting == "nb"
        vectorizers["ngrams"] = TextVectorizer(
            "sequences",
            max_tokens=config.ngram_features,
            ngram_range=(1, config.ngram_max),
            lowercase=config.lowercase,
            binary=naive_bayes,
            log_count_ratios=naive_bayes,
        )
    features = TextFeatures(vectorizers).fit(train_examples.inputs, train_examples.labels)
    if config.ngram_features and config.ngram_weighting == "nb" and config.ngram_start == "logistic_regression":
        from kerastrain import ngram_start

        ngrams = features.vectorizers["ngrams"]
        label_ids = np.searchsorted(ngrams.classes_, np.asarray(train_examples.labels))
        features.set_ngram_start(
            ngram_start.fit_logistic_regression(
                ngrams.transform(train_examples.inputs), label_ids, ngrams.log_count_ratios_
            )
        )
    if config.embeddings:
        from kerastrain import embeddings

        tokens = features.vectorizers["tokens"]
        features.set_embedding_matrix(
            embeddings.load_embedding_matrix(
                config.embeddings,
                tokens.vocabulary_,
                config.embedding_dim,
                seed=config.seed,
                match_lowercase=config.lowercase,
            )
        )
    return features


def length_buckets(config, train_inputs):
    """Buckets of similar text lengths, so that training batches carry little padding.

    Returns:
        A `LengthBuckets`, or `None` with `--no-length-buckets`.
    """
    from kerastrain.length_buckets import LengthBuckets

    if not config.length_buckets:
        return None
    minimum_lengths = {"tokens": max(config.kernel_sizes)}
    if "ngrams" in train_inputs:
        minimum_lengths["ngrams"] = 1
    return LengthBuckets.for_padded_inputs(train_inputs, minimum_lengths)


# Augment (--augment): word deletions and adjacent swaps, in the input pipeline,
# training batches only.


def training_augmentation(config, features, train_examples, train_inputs):
    """Word deletions and adjacent swaps at `--augment-rate`, under `--augment`.

    The changed texts' token ids and n-gram ids are derived again in the
    input pipeline (see `kerastrain.augmentation.WordAugmentation`), so the
    training inputs get the texts' word ids as one more input, `"words"`.

    Args:
        config: the run's `TextCNNConfig`.
        features: the fitted `TextFeatures`.
        train_examples: the training split, an `Examples` of texts.
        train_inputs: the model inputs of the training split.

    Returns:
        An `augmentation.TrainingAugmentation`.
    """
    from kerastrain import augmentation

    if not config.augment or config.augment_rate == 0:
        return augmentation.TrainingAugmentation(train_inputs)
    words = augmentation.WordAugmentation(features, config.augment_rate)
    return augmentation.TrainingAugmentation.of_batches(
        words.add_words(train_inputs, train_examples.inputs),
        words,
        f"word deletions and adjacent swaps at rate {config.augment_rate:g}",
    )


# Build the model: sized by the fitted vectorizers; the pipeline compiles it in
# the strategy's scope.


def build_model(config, features, num_classes):
    """The TextCNN, uncompiled, sized by the fitted `features`."""
    from kerastrain.models import build_textcnn

    tokens = features.vectorizers["tokens"]
    ngrams = features.vectorizers.get("ngrams")
    start = getattr(features, "ngram_start_", None)
    ngram_weights = None
    if ngrams is not None:
        ngram_weights = ngrams.log_count_ratios_ if ngrams.log_count_ratios else ngrams.idf_
    return build_textcnn(
        vocabulary_size=tokens.vocabulary_size,
        sequence_length=tokens.sequence_length_,
        num_classes=num_classes,
        embedding_dim=config.embedding_dim,
        filters=config.filters,
        kernel_sizes=config.kernel_sizes,
        dropout=config.dropout,
        l2=config.l2,
        ngram_vocabulary_size=ngrams.vocabulary_size if ngrams else 0,
        ngram_embedding_dim=config.ngram_embedding_dim,
        ngram_weights=ngram_weights,
        ngram_initial_weights=None if start is None else start.weights,
        initial_biases=None if start is None else start.biases,
        ngram_l2=0.0 if start is None else start.l2,
        ngram_example_dropout=config.ngram_example_dropout,
        # `None` in a preprocessor read back from a run folder: the trained
        # weights, restored next, hold the vectors.
        embedding_matrix=getattr(features, "embedding_matrix_", None),
        embedding_trainable=config.embeddings_trainable,
        gradient_checkpointing=config.gradient_checkpointing,
    )


RECIPE = Recipe(
    name="textcnn",
    config_class=TextCNNConfig,
    summary="a TextCNN (Kim 2014) with a linear n-gram branch, on labelled texts",
    load_examples=load_examples,
    fit_preprocessor=fit_preprocessor,
    build_model=build_model,
    length_buckets=length_buckets,
    augmentation=training_augmentation,
    # On an Intel Xeon with AMX the TextCNN reached the same test accuracy in
    # mixed_bfloat16 as in float32: --precision auto measures whether it is faster.
    reduced_precision_on_cpu=True,
)


def main(config):
    """Trains the TextCNN as `config` says (see `kerastrain.pipeline.train`).

    Returns:
        The finished `Run`.
    """
    from kerastrain import pipeline

    return pipeline.train(RECIPE, config)


if __name__ == "__main__":
    cli.run_entry_point(lambda argv: cli.train_command(RECIPE, argv), sys.argv[1:])
