"""Title: Text classification with a TextCNN
Description: a TextCNN (Kim 2014) with a linear bag-of-n-grams branch, trained on labelled texts.

Usage:

    kerastrain train textcnn                              # the bundled SMS spam data
    kerastrain train textcnn --data reviews.csv.gz --text-column body --label-column stars
    python -m kerastrain.recipes.textcnn ...              # the same command

The shared pipeline (`kerastrain.pipeline`) splits the data, trains under the
chosen strategy and precision, and writes the run folder; this file says what
is particular to the TextCNN: its data, its text vectorizers and its model.
"""

import sys

from kerastrain import cli
from kerastrain.config import TextCNNConfig
from kerastrain.recipe import Recipe

# Load data: a CSV of texts and labels, or a dataset name (`sms`, `imdb`, `20newsgroups`).


def load_examples(config):
    """The labelled texts that `config.data` names."""
    from kerastrain import data

    return data.load_examples(config.data, config.text_column, config.label_column)


# Prepare: token ids for the convolutions, n-gram ids for the linear branch; training texts only.


def fit_preprocessor(config, train_examples):
    """A fitted `TextFeatures` with model inputs `"tokens"` and, with `--ngram-features`, `"ngrams"`.

    `--ngram-weighting nb` learns each n-gram's log-count ratio per class, and
    `--ngram-start logistic_regression` fits NB-weighted logistic regression on
    them to start the branch; `--embeddings` vectors go into the model's weights.
    """
    return fit_features(config, train_examples)


def refit_preprocessor(config, first_features, joined_examples):
    """`--refit`: the features fitted again on the training and validation splits, in the first model's shapes.

    Each vectorizer keeps the first one's vocabulary size (now the most
    frequent words or n-grams of both splits) and sequence length, and the
    n-gram start keeps its L2 penalty, so that the refit trains the first
    model's compiled step with fresh weights instead of compiling a new one.
    """
    shapes = {
        name: {"max_tokens": vectorizer.vocabulary_size, "sequence_length": vectorizer.sequence_length_}
        for name, vectorizer in first_features.vectorizers.items()
    }
    start = getattr(first_features, "ngram_start_", None)
    return fit_features(config, joined_examples, shapes, ngram_l2=start.l2 if start is not None else None)


def fit_features(config, examples, shapes=None, ngram_l2=None):
    """`TextFeatures` fitted on `examples`; `shapes` and `ngram_l2` fix what `refit_preprocessor` keeps."""
    from kerastrain.text_vectorization import TextFeatures, TextVectorizer

    shapes = shapes or {}
    vectorizers = {
        "tokens": TextVectorizer(
            "sequences", min_sequence_length=max(config.kernel_sizes), lowercase=config.lowercase,
            **shapes.get("tokens", {"max_tokens": config.max_tokens, "sequence_length": config.sequence_length}),
        )  # fmt: skip
    }
    if config.ngram_features:
        naive_bayes = config.ngram_weighting == "nb"
        vectorizers["ngrams"] = TextVectorizer(
            "sequences", ngram_range=(1, config.ngram_max), lowercase=config.lowercase,
            binary=naive_bayes, log_count_ratios=naive_bayes,
            **shapes.get("ngrams", {"max_tokens": config.ngram_features}),
        )  # fmt: skip
    features = TextFeatures(vectorizers).fit(examples.inputs, examples.labels)
    if config.ngram_features and config.ngram_weighting == "nb" and config.ngram_start == "logistic_regression":
        from kerastrain import ngram_start

        features.set_ngram_start(ngram_start.fit_for_features(features, examples, l2=ngram_l2))
    if config.embeddings:
        from kerastrain import embeddings

        features.set_embedding_matrix(
            embeddings.load_embedding_matrix(
                config.embeddings, features.vectorizers["tokens"].vocabulary_, config.embedding_dim,
                seed=config.seed, match_lowercase=config.lowercase,
            )  # fmt: skip
        )
    return features


def length_buckets(config, train_inputs):
    """Buckets of similar text lengths, so that batches carry little padding; `None` with `--no-length-buckets`."""
    from kerastrain.length_buckets import LengthBuckets

    if not config.length_buckets:
        return None
    minimum_lengths = {"tokens": max(config.kernel_sizes)}
    if "ngrams" in train_inputs:
        minimum_lengths["ngrams"] = 1
    return LengthBuckets.for_padded_inputs(train_inputs, minimum_lengths)


# Augment (--augment): word deletions and swaps in the input pipeline, training batches only.


def training_augmentation(config, features, train_examples, train_inputs):
    """Word deletions and adjacent swaps at `--augment-rate`, under `--augment`."""
    from kerastrain import augmentation

    rate = config.augment_rate if config.augment else 0.0
    return augmentation.for_words(features, train_examples, train_inputs, rate)


# Build the model, sized by the fitted vectorizers; the pipeline compiles it in the strategy's scope.


def build_model(config, features, num_classes):
    """The TextCNN, uncompiled, sized by the fitted `features`."""
    from kerastrain.models import build_textcnn

    tokens = features.vectorizers["tokens"]
    return build_textcnn(
        vocabulary_size=tokens.vocabulary_size,
        sequence_length=tokens.sequence_length_,
        num_classes=num_classes,
        embedding_dim=config.embedding_dim,
        filters=config.filters,
        kernel_sizes=config.kernel_sizes,
        dropout=config.dropout,
        l2=config.l2,
        ngram_embedding_dim=config.ngram_embedding_dim,
        ngram_example_dropout=config.ngram_example_dropout,
        **features.ngram_branch(),
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
    refit_preprocessor=refit_preprocessor,
    build_model=build_model,
    length_buckets=length_buckets,
    augmentation=training_augmentation,
    # As accurate in mixed_bfloat16 as in float32 (measured on an Intel Xeon with AMX).
    reduced_precision_on_cpu=True,
)


def main(config):
    """Trains the TextCNN as `config` says and returns the finished `Run` (see `kerastrain.pipeline.train`)."""
    from kerastrain import pipeline

    return pipeline.train(RECIPE, config)


if __name__ == "__main__":
    cli.run_entry_point(lambda argv: cli.train_command(RECIPE, argv), sys.argv[1:])
