"""Tests for kerastrain.augmentation, kerastrain.data.images and the recipes' --augment."""

import numpy as np
import pandas as pd
import pytest

from conftest import SERVERS
from kerastrain import augmentation, tf_data
from kerastrain.backend import keras, tf
from kerastrain.config import MLPConfig, TextCNNConfig
from kerastrain.data import images
from kerastrain.data.examples import Examples
from kerastrain.distribute import inputs as distributed_inputs
from kerastrain.text_vectorization import PADDING_ID, UNKNOWN_ID, TextFeatures, TextVectorizer

SEED = tf.constant([3, 4], tf.int64)
PIXEL_NAMES = [f"pixel{index}" for index in range(64)]


def scale(scaler, raw):
    return scaler.model_inputs(pd.DataFrame(raw, columns=scaler.feature_names))


def padded_word_rows(lengths, width, seed=0):
    """Rows of distinct word ids (1, 2, ...), row i holding lengths[i] words then padding."""
    rows = np.zeros((len(lengths), width), np.int32)
    next_id = 1
    for row, length in enumerate(lengths):
        rows[row, :length] = np.arange(next_id, next_id + length)
        next_id += length
    return rows


def words_then_padding(row):
    """Whether a row holds its words first and only padding after them."""
    length = np.count_nonzero(row)
    return bool(np.all(row[:length] != PADDING_ID) and np.all(row[length:] == PADDING_ID))


# Word deletion and swaps.


def test_rate_zero_changes_no_word():
    words = tf.constant(padded_word_rows([5, 1, 0, 8], 8))
    for function in (augmentation.delete_words, augmentation.swap_adjacent_words, augmentation.delete_and_swap_words):
        np.testing.assert_array_equal(function(words, 0.0, SEED).numpy(), words.numpy())


def test_deletion_keeps_the_order_the_padding_and_at_least_one_word():
    words = padded_word_rows([12, 1, 0, 30, 3], 30)
    for rate in (0.3, 0.9, 1.0):
        deleted = augmentation.delete_words(tf.constant(words), rate, SEED).numpy()
        assert deleted.shape == words.shape and deleted.dtype == words.dtype
        for original, row in zip(words, deleted):
            assert words_then_padding(row)
            kept = row[row != PADDING_ID].tolist()
            assert kept == [word for word in original if word in kept]  # a subsequence, in order
            assert (len(kept) >= 1) == (np.count_nonzero(original) >= 1)


def test_deletion_deletes_about_rate_of_the_words():
    words = padded_word_rows([50] * 200, 50)
    deleted = augmentation.delete_words(tf.constant(words), 0.2, SEED).numpy()
    fraction = 1 - np.count_nonzero(deleted) / np.count_nonzero(words)
    assert 0.18 < fraction < 0.22


def test_swaps_exchange_disjoint_adjacent_pairs_and_leave_the_padding():
    words = padded_word_rows([40] * 50 + [1, 2, 0], 45)
    swapped = augmentation.swap_adjacent_words(tf.constant(words), 0.3, SEED).numpy()
    changed_pairs = 0
    for original, row in zip(words, swapped):
        assert words_then_padding(row) and np.count_nonzero(row) == np.count_nonzero(original)
        position = 0
        while position < len(row):
            if row[position] == original[position]:
                position += 1
                continue
            # A swap: this word and the next trade places, and the next is not swapped again.
            assert row[position] == original[position + 1] and row[position + 1] == original[position]
            changed_pairs += 1
            position += 2
    pairs = 50 * 39
    assert 0.2 * pairs < changed_pairs < 0.3 * pairs  # about rate * (1 - rate) of the pairs


def test_same_seed_same_changes_other_seed_other_changes():
    words = tf.constant(padded_word_rows([20] * 10, 20))
    first = augmentation.delete_and_swap_words(words, 0.2, SEED).numpy()
    again = augmentation.delete_and_swap_words(words, 0.2, SEED).numpy()
    other = augmentation.delete_and_swap_words(words, 0.2, tf.constant([3, 5], tf.int64)).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


# Token ids and n-gram ids derived from changed words.

TEXTS = [
    "what is the capital of france",
    "who wrote the book",
    "how far is the moon from the earth",
    "what is a word",
    "!!!",
    "the capital of the moon is far far away from what we know of it",
]


def fitted_features(ngram_max=2, ngram_tokens=40, binary=False):
    vectorizers = {
        "tokens": TextVectorizer("sequences", max_tokens=12, min_sequence_length=3),
        "ngrams": TextVectorizer("sequences", max_tokens=ngram_tokens, ngram_range=(1, ngram_max), binary=binary),
    }
    return TextFeatures(vectorizers).fit(TEXTS)


@pytest.mark.parametrize("ngram_max, binary", [(1, False), (2, False), (3, False), (2, True), (3, True)])
def test_derived_inputs_of_unchanged_words_are_the_vectorizers_own(ngram_max, binary):
    # binary: each distinct n-gram id once (unknown ones share one id), as naive-Bayes weighting takes them.
    features = fitted_features(ngram_max, ngram_tokens=12 if binary else 40, binary=binary)
    inputs = features.transform(TEXTS)
    words = augmentation.WordAugmentation(features, 0.0)
    training_inputs = words.add_words(inputs, TEXTS)
    widths = {name: inputs[name].shape[1] for name in inputs}
    derived = words.derive(tf.constant(training_inputs["words"]), widths)
    for name in inputs:
        np.testing.assert_array_equal(derived[name].numpy()[:4], inputs[name][:4])


@pytest.mark.parametrize("binary", [False, True])
def test_derived_inputs_of_a_text_with_deleted_words_are_those_of_the_shorter_text(binary):
    # The n-grams of deleted words are gone; an n-gram that the deletion makes is
    # looked up ("what the" is unknown to the vocabulary, "the capital" is known).
    features = fitted_features(ngram_max=2, ngram_tokens=200, binary=binary)
    words = augmentation.WordAugmentation(features, 0.0)
    training_inputs = words.add_words(features.transform(TEXTS), TEXTS)
    shorter_texts = ["what the capital of", "who the book", "the far moon"]
    word_rows = np.zeros((3, words.width), np.int32)
    for row, text in enumerate(shorter_texts):
        ids = [words.word_ids[word] for word in text.split()]
        word_rows[row, : len(ids)] = ids
    expected = features.transform(shorter_texts)
    widths = {name: training_inputs[name].shape[1] for name in expected}
    derived = words.derive(tf.constant(word_rows), widths)
    for name in expected:
        np.testing.assert_array_equal(derived[name].numpy(), expected[name])
    assert UNKNOWN_ID in derived["ngrams"].numpy()[0]  # "what the"


def test_word_augmentation_drops_words_keeps_widths_and_text_without_words():
    features = fitted_features()
    inputs = features.transform(TEXTS)
    words = augmentation.WordAugmentation(features, 0.5)
    batch = {name: tf.constant(value) for name, value in words.add_words(inputs, TEXTS).items()}
    batch["tokens"] = batch["tokens"][:, :4]  # as length buckets cut a batch
    changed = words(batch, SEED)
    assert set(changed) == {"tokens", "ngrams"}
    assert changed["tokens"].shape == (len(TEXTS), 4)
    assert changed["ngrams"].shape == inputs["ngrams"].shape
    np.testing.assert_array_equal(changed["tokens"][4].numpy(), inputs["tokens"][4, :4])  # "!!!": no words
    assert not np.array_equal(changed["ngrams"].numpy(), inputs["ngrams"])


# Image shifts.


def test_shifts_move_each_image_by_at_most_max_shift_and_fill_with_the_background():
    side, max_shift = 6, 2
    images_in = np.random.default_rng(0).uniform(1, 2, size=(40, side * side)).astype("float32")
    shifted = augmentation.shift_images(tf.constant(images_in), side, max_shift, SEED, fill_value=-5.0).numpy()
    assert shifted.shape == images_in.shape
    offsets = set()
    for original, moved in zip(images_in.reshape(-1, side, side), shifted.reshape(-1, side, side)):
        padded = np.pad(original, max_shift, constant_values=-5.0)
        matches = [
            (dy, dx)
            for dy in range(2 * max_shift + 1)
            for dx in range(2 * max_shift + 1)
            if np.array_equal(padded[dy : dy + side, dx : dx + side], moved)
        ]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 5  # the shifts vary between images


def test_max_shift_zero_and_the_shift_rule():
    features = tf.ones((2, 64))
    assert augmentation.shift_images(features, 8, 0, SEED) is features
    assert [augmentation.max_shift_for(side) for side in (8, 16, 28, 56)] == [0, 1, 1, 2]


@pytest.mark.parametrize("per_feature", [True, False])
def test_image_shifts_fill_with_the_raw_background_whatever_the_scaler(per_feature):
    side = 8
    rng = np.random.default_rng(1)
    raw = np.zeros((30, side, side), "float32")
    raw[:, 2:6, 2:6] = rng.integers(1, 17, size=(30, 4, 4))
    raw = raw.reshape(30, -1)
    scaler = images.fit_scaler(raw, PIXEL_NAMES, per_feature=per_feature)
    assert augmentation.background_value(raw, side) == 0.0
    shift = augmentation.image_shifts(side, scaler, background=0.0, max_shift=1)
    shifted = shift(tf.constant(scale(scaler, raw)), SEED).numpy()
    raw_back = scaler.scaler_.inverse_transform(shifted)
    expected = augmentation.shift_images(tf.constant(raw), side, 1, SEED).numpy()
    np.testing.assert_allclose(raw_back, expected, atol=1e-4)


def test_background_value_is_the_most_common_border_pixel():
    squares = np.full((5, 8, 8), 255.0)
    squares[:, 3:5, 3:5] = 0.0
    assert augmentation.background_value(squares.reshape(5, -1), 8) == 255.0


# Image-shaped tables and their scaler.


def test_image_side_of_pixel_tables_and_of_other_tables():
    assert images.image_side(np.zeros((3, 784))) == 28
    assert images.image_side(np.full((3, 64), 16.0)) == 8
    assert images.image_side(np.zeros((3, 13))) == 0
    assert images.image_side(np.zeros((3, 49))) == 0  # 7 x 7: too small to be taken for an image
    assert images.image_side(np.full((3, 64), -1.0)) == 0
    assert images.image_side(np.full((3, 64), 300.0)) == 0


def test_global_scaler_scales_every_pixel_alike_and_stays_a_feature_scaler():
    rng = np.random.default_rng(0)
    features = rng.uniform(0, 255, size=(50, 64))
    features[:, 0] = 0.0  # a constant border pixel
    names = [f"pixel{index}" for index in range(64)]
    scaler = images.fit_scaler(features, names, per_feature=False)
    assert type(scaler).__name__ == "FeatureScaler" and type(scaler.scaler_).__name__ == "StandardScaler"
    np.testing.assert_allclose(
        scaler.model_inputs(pd.DataFrame(features, columns=names)),
        (features - features.mean()) / features.std(),
        rtol=1e-5,
    )
    assert scaler.feature_names == names
    per_pixel = images.fit_scaler(features, names)
    np.testing.assert_allclose(per_pixel.scaler_.mean_, features.mean(axis=0))


# Training batches.


def labelled_images(count, side=8):
    """Images whose foreground pixels hold the example's label, 1 to count, on a background of 0."""
    squares = np.zeros((count, side, side), "float32")
    squares[:, 2:6, 2:6] = np.arange(1, count + 1, dtype="float32")[:, None, None]
    return squares.reshape(count, -1), np.arange(1, count + 1)


def scaled_images_and_shifts(raw):
    """Globally scaled images, their scaler and the `augment` argument that shifts them."""
    scaler = images.fit_scaler(raw, PIXEL_NAMES, per_feature=False)
    shift = augmentation.image_shifts(8, scaler, background=0.0, max_shift=1)
    augment = augmentation.TrainingAugmentation.of_batches(raw, shift, "").augment
    return scale(scaler, raw), scaler, augment


def augmented_dataset(raw, labels, seed=0, **arguments):
    scaled, scaler, augment = scaled_images_and_shifts(raw)
    return tf_data.make_dataset(scaled, labels, 8, shuffle=True, seed=seed, augment=augment, **arguments), scaler


def epoch_images(dataset):
    return np.concatenate([inputs.numpy() for inputs, _ in dataset])


def test_augmented_batches_keep_their_labels_and_change_every_epoch():
    raw, labels = labelled_images(32)
    dataset, scaler = augmented_dataset(raw, labels)
    epochs = []
    for _ in range(2):
        seen = {}
        for inputs, batch_labels in dataset:
            for row, label in zip(np.rint(scaler.scaler_.inverse_transform(inputs.numpy())), batch_labels.numpy()):
                assert sorted(np.unique(row)) == [0.0, float(label)]  # the label's own image
                assert np.count_nonzero(row) == 16  # its 4x4 square, shifted whole
                seen[int(label)] = row
        assert sorted(seen) == labels.tolist()
        epochs.append(seen)
    assert any(not np.array_equal(epochs[0][label], epochs[1][label]) for label in labels)


def test_augmented_batches_repeat_with_the_same_seed_in_one_process():
    raw, labels = labelled_images(32)

    def first_epoch(seed):
        keras.utils.set_random_seed(0)  # as --seed does before the data is made
        return epoch_images(augmented_dataset(raw, labels, seed=seed)[0])

    np.testing.assert_array_equal(first_epoch(1), first_epoch(1))
    assert not np.array_equal(first_epoch(1), first_epoch(2))


def test_repeated_training_data_changes_between_passes():
    raw, labels = labelled_images(16)
    dataset, _ = augmented_dataset(raw, labels, repeat=True)
    seen = {}
    for inputs, batch_labels in dataset.take(2 * 2):  # two passes of two batches
        for row, label in zip(inputs.numpy(), batch_labels.numpy()):
            seen.setdefault(int(label), []).append(row)
    assert any(not np.array_equal(*rows) for rows in seen.values())


def test_only_training_batches_are_augmented():
    features, _, augment = scaled_images_and_shifts(labelled_images(24)[0])
    labels = np.arange(24)
    inputs = distributed_inputs.make_training_inputs(
        tf.distribute.get_strategy(), (features, labels), (features, labels), 8, augment=augment
    )
    np.testing.assert_array_equal(epoch_images(inputs.validation), features)
    trained = epoch_images(inputs.train.take(3))
    assert not np.array_equal(np.sort(trained, axis=0), np.sort(features, axis=0))


def test_a_parameter_server_worker_dataset_function_augments_in_its_graph():
    # The coordinator traces the dataset function; the augmentation must trace with it.
    features, _, augment = scaled_images_and_shifts(labelled_images(16)[0])
    labels = np.arange(16)
    make_worker_dataset = distributed_inputs.worker_dataset_function((features, labels), 8, seed=0, augment=augment)

    @tf.function
    def first_batch():
        return next(iter(make_worker_dataset(tf.distribute.InputContext())))

    inputs, batch_labels = first_batch()
    assert inputs.shape == (8, 64) and batch_labels.shape == (8,)


# The recipes' choices.


def test_mlp_shifts_image_shaped_columns_only():
    features, labels = labelled_images(10)
    pixels = Examples(features, labels.astype(str), "pixels", PIXEL_NAMES)
    table = Examples(features[:, :13], labels.astype(str), "table", [f"column{index}" for index in range(13)])
    from kerastrain.recipes import mlp

    cases = [
        (MLPConfig(augment=True, augment_shift=1), pixels, "shifts of up to 1 pixel of the 8x8 images"),
        (MLPConfig(augment=True), pixels, "none, as 8x8 images are too small"),
        (MLPConfig(augment=True, augment_shift=1), table, "none, as the 13 feature columns"),
        (MLPConfig(augment=False, augment_shift=1), pixels, ""),
    ]
    for config, examples, expected in cases:
        scaler = mlp.fit_preprocessor(config, examples)
        chosen = mlp.training_augmentation(config, scaler, examples, scaler.model_inputs(examples.inputs))
        assert chosen.description.startswith(expected)
        assert (chosen.augment is not None) == expected.startswith("shifts")


def test_textcnn_adds_the_words_input_under_augment():
    from kerastrain.recipes import textcnn

    config = TextCNNConfig(augment=True, augment_rate=0.2, max_tokens=12, ngram_features=40)
    examples = Examples(TEXTS, np.array(["a", "b"] * 3, dtype=object), "texts")
    features = textcnn.fit_preprocessor(config, examples)
    inputs = features.model_inputs(TEXTS)
    chosen = textcnn.training_augmentation(config, features, examples, inputs)
    assert set(chosen.train_inputs) == {"tokens", "ngrams", "words"} and chosen.augment is not None
    assert "0.2" in chosen.description
    assert textcnn.training_augmentation(TextCNNConfig(), features, examples, inputs).train_inputs is inputs


@pytest.mark.slow
def test_recipes_train_with_augment_end_to_end(tmp_path):
    from kerastrain import cli
    from kerastrain.config import MLPConfig
    from kerastrain.recipes import mlp, textcnn

    flags = ["--epochs", "2", "--verbose", "0", "--precision", "float32", "--augment"]
    text_flags = ["--config", "recipes/smoke_textcnn.toml", *flags, "--output-dir", str(tmp_path / "text")]
    config = cli.parse_command(TextCNNConfig, text_flags, "textcnn", "").config
    assert config.augment
    metrics = textcnn.main(config).metrics
    assert metrics["epochs"] == 2 and 0.0 <= metrics["test"]["accuracy"] <= 1.0
    digits_flags = [*flags, "--augment-shift", "1", "--output-dir", str(tmp_path / "digits")]
    config = cli.parse_command(MLPConfig, digits_flags, "mlp", "").config
    metrics = mlp.main(config).metrics
    assert metrics["epochs"] == 2


@pytest.mark.slow
@SERVERS
def test_parameter_server_job_trains_with_shifted_images(tmp_path):
    import json

    from conftest import run_module

    run_dir = tmp_path / "parameter_server"
    result = run_module(
        "kerastrain.recipes.mlp", "--strategy", "parameter_server", "--local-cluster", "workers=2,ps=1",
        "--augment", "--augment-shift", "1", "--hidden-units", "16", "--epochs", "1", "--output-dir", run_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "augmentation: shifts of up to 1 pixel of the 8x8 images" in result.stdout
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 1
