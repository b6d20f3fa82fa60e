"""Title: Classification with a multilayer perceptron
Description: an MLP on numeric feature columns (pixels, measurements) or on bag-of-words text features.

Usage:

    kerastrain train mlp                                   # scikit-learn's 8x8 digits
    kerastrain train mlp --data fashion-mnist.csv --hidden-units 512,256
    kerastrain train mlp --data sms --text-features tfidf
    python -m kerastrain.recipes.mlp ...                   # the same command

A CSV with a `--text-column` is read as text and turned into TF-IDF (or count,
or binary) features; otherwise every column but `--label-column` is a numeric
feature, standardized with statistics of the training split (one mean and
deviation for all columns when they are the pixels of square images).
"""

import sys

from kerastrain import cli
from kerastrain.config import MLPConfig
from kerastrain.recipe import Recipe

# Load data: numeric columns or texts, and labels, from a CSV or a dataset name.


def load_examples(config):
    """The labelled numeric rows or texts that `config.data` names."""
    from kerastrain import data

    return data.load_examples(config.data, config.text_column, config.label_column, allow_numeric=True)


# Prepare: bag-of-words features for text, standardized columns for numbers,
# both fitted on the training split only.


def fit_preprocessor(config, train_examples):
    """A `TextVectorizer` of bag-of-words features for text, or a `FeatureScaler` for numbers.

    With `--scaling auto`, columns that are the pixels of square images share
    one mean and deviation (see `kerastrain.data.images`); other tables are
    standardized column by column.
    """
    from kerastrain.data import images
    from kerastrain.text_vectorization import TextVectorizer

    if train_examples.is_text:
        vectorizer = TextVectorizer(config.text_features, max_tokens=config.max_features, ngram_range=(1, config.ngram_max))
        return vectorizer.fit(train_examples.inputs)
    image_shaped = bool(images.image_side(train_examples.inputs))
    per_feature = config.scaling == "per_feature" or (config.scaling == "auto" and not image_shaped)
    return images.fit_scaler(train_examples.inputs, train_examples.feature_names, per_feature=per_feature)


# Augment (--augment): shifts of a pixel or two for image-shaped columns, in the
# input pipeline, training batches only.


def training_augmentation(config, preprocessor, train_examples, train_features):
    """Shifts of a pixel or two for image-shaped numeric features, under `--augment`.

    The largest shift is `--augment-shift`, or with 0 one pixel per 28 of the
    image side, rounded, which leaves images under 16 pixels a side (such as
    the 8x8 digits) unshifted. Text features and numeric tables that are not
    image-shaped (see `kerastrain.data.images.image_side`) are left as they
    are. The description says what was chosen.

    Args:
        config: the run's `MLPConfig`.
        preprocessor: the fitted `FeatureScaler` (or text vectorizer).
        train_examples: the training split, an `Examples` of raw values.
        train_features: the model inputs of the training split.

    Returns:
        An `augmentation.TrainingAugmentation`.
    """
    from kerastrain import augmentation
    from kerastrain.data import images

    if not config.augment:
        return augmentation.TrainingAugmentation(train_features)
    if train_examples.is_text:
        return augmentation.TrainingAugmentation(
            train_features, description="none for bag-of-words features (the TextCNN recipe augments text)"
        )
    side = images.image_side(train_examples.inputs)
    if not side:
        return augmentation.TrainingAugmentation(
            train_features,
            description=f"none, as the {train_features.shape[1]} feature columns are not the pixels of a square image",
        )
    max_shift = config.augment_shift or augmentation.max_shift_for(side)
    if not max_shift:
        return augmentation.TrainingAugmentation(
            train_features,
            description=f"none, as {side}x{side} images are too small to shift unasked (--augment-shift 1 shifts them)",
        )
    background = augmentation.background_value(train_examples.inputs, side)
    shift = augmentation.image_shifts(side, preprocessor, background, max_shift)
    pixels = "1 pixel" if max_shift == 1 else f"{max_shift} pixels"
    return augmentation.TrainingAugmentation.of_batches(
        train_features, shift, f"shifts of up to {pixels} of the {side}x{side} images"
    )


# Build the model: one input per feature of the fitted preprocessor.


def build_model(config, preprocessor, num_classes):
    """The MLP, uncompiled."""
    from kerastrain.models import build_mlp

    return build_mlp(
        input_dim=preprocessor.num_features,
        num_classes=num_classes,
        hidden_units=config.hidden_units,
        activation=config.activation,
        initializer=config.initializer,
        batch_normalization=config.batch_normalization,
        dropout=config.dropout,
        l1=config.l1,
        l2=config.l2,
        gradient_checkpointing=config.gradient_checkpointing,
    )


RECIPE = Recipe(
    name="mlp",
    config_class=MLPConfig,
    summary="a multilayer perceptron on numeric columns or bag-of-words text features",
    load_examples=load_examples,
    fit_preprocessor=fit_preprocessor,
    build_model=build_model,
    augmentation=training_augmentation,
    takes_numeric_features=True,
    # On an Intel Xeon with AMX the MLP lost about 0.8 points of test accuracy on
    # 28x28 images in mixed_bfloat16 (two seeds, both lower), at no gain in speed:
    # --precision auto keeps it in float32 (an explicit mixed_bfloat16 still applies).
    reduced_precision_on_cpu=False,
)


def main(config):
    """Trains the MLP as `config` says (see `kerastrain.pipeline.train`).

    Returns:
        The finished `Run`.
    """
    from kerastrain import pipeline

    return pipeline.train(RECIPE, config)


if __name__ == "__main__":
    cli.run_entry_point(lambda argv: cli.train_command(RECIPE, argv), sys.argv[1:])
