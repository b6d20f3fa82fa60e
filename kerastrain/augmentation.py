"""Random changes to training batches, drawn afresh every epoch inside the input pipeline.

Two kinds, each a pure TensorFlow function on a batch:

- Text (EDA, Wei and Zou 2019, without its lexicon): `delete_and_swap_words`
  deletes each word with probability `rate`, then swaps each pair of adjacent
  words with probability `rate` (a little less: two swaps never share a word).
  The TextCNN's two inputs, token ids and the ids of word n-grams, are then
  derived again from the changed words by
  `WordAugmentation`, as the fitted vectorizers would have made them from the
  changed text: an n-gram that a deletion or a swap creates gets its own id if
  the n-gram vocabulary has it, else the unknown id, the n-grams of deleted
  words are gone, and a binary (naive-Bayes) n-gram input lists each id once.
- Image-shaped numbers (MNIST's 784 = 28 x 28 columns): `shift_images` moves
  each image by up to a pixel or two in each direction; the pixels moved in
  take the background's value (the value of a raw background pixel after the
  scaler, not 0: 0 is the mean after standardization).

`augment_batches` maps either over a dataset of `(inputs, labels)` batches with
per-batch seeds from `tf.data.Dataset.random`, so every epoch (every pass over
the data, also when each epoch makes a new iterator) draws new changes, the
same seed draws the same ones, and the function runs wherever the dataset
does: in this process, on parameter-server workers, on multi-worker mirrored
workers. Labels pass unchanged; validation, test and prediction data are never
augmented.
"""

import dataclasses

import numpy as np

from kerastrain.backend import tf
from kerastrain.text_vectorization import PADDING_ID, UNKNOWN_ID, TextVectorizer

# Shifts of at most one pixel in every this many pixels of the image's side,
# rounded: none for scikit-learn's 8 x 8 digits, whose strokes reach the border
# (one pixel is an eighth of the image there), 1 for 28 x 28 images. See
# docs/augmentation.md for what each gained or lost.
PIXELS_PER_SHIFT = 28


def augment_batches(batches, augment_inputs, seed):
    """Applies `augment_inputs` to the inputs of every batch, with a fresh seed per batch.

    Args:
        batches: a `tf.data.Dataset` of `(inputs, labels)` batches.
        augment_inputs: a function `(inputs, seed) -> inputs`, where `seed`
            is a shape `[2]` int64 tensor for stateless random ops.
        seed: an int; or a scalar int64 tensor, a parameter-server worker's
            own seed for its endlessly repeated data.

    Returns:
        A `tf.data.Dataset` of `(augmented inputs, labels)` batches.
    """
    if tf.is_tensor(seed):
        # A parameter-server worker's own seed, which `Dataset.random` does not
        # take inside the traced dataset function. The worker's data repeats
        # without end, so seeds counted up from it never repeat.
        randoms = tf.data.Dataset.counter()
    else:
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    seed = tf.cast(seed, tf.int64)

    def augment(batch, random):
        inputs, labels = batch
        return augment_inputs(inputs, tf.stack([random, seed])), labels

    return tf.data.Dataset.zip((batches, randoms)).map(
        augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


@dataclasses.dataclass
class TrainingAugmentation:
    """A recipe's augmentation of its training data, for `tf_data.make_training_inputs`.

    Attributes:
        train_inputs: the training split's model inputs, plus what the batch
            function reads (the TextCNN's `"words"`).
        augment: a function `(batches, seed) -> batches`, the `augment`
            argument of `make_training_inputs`, or `None` for none.
        description: a few words on what it does, or why nothing, for the
            run's first line; empty without `--augment`.
    """

    train_inputs: object
    augment: object = None
    description: str = ""

    @classmethod
    def of_batches(cls, train_inputs, augment_inputs, description):
        """The augmentation that applies `augment_inputs(inputs, seed)` to every training batch."""
        return cls(train_inputs, lambda batches, seed: augment_batches(batches, augment_inputs, seed), description)


def delete_and_swap_words(words, rate, seed):
    """Deletes each word with probability `rate`, then swaps adjacent words with probability `rate`.

    Args:
        words: an int tensor `(batch, length)` of word ids, each row its words
            then padding (`0`).
        rate: the probability of a deletion and of a swap, a float from 0 to 1.
        seed: a shape `[2]` int tensor, the seed of the stateless random ops.

    Returns:
        An int tensor of the shape and dtype of `words`: each row its
        remaining words, in their new order, then padding.

    Example:

    ```python
    words = tf.constant([[5, 6, 7, 8, 0, 0]])
    delete_and_swap_words(words, 0.2, seed=tf.constant([0, 1]))  # [[6, 5, 8, 0, 0, 0]], say
    ```
    """
    deletion_seed, swap_seed = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2))
    return swap_adjacent_words(delete_words(words, rate, deletion_seed), rate, swap_seed)


def delete_words(words, rate, seed):
    """Deletes each word with probability `rate`; a text keeps at least one of its words.

    Args:
        words: an int tensor `(batch, length)` of word ids, each row its words
            then padding (`0`).
        rate: the probability of a deletion, a float from 0 to 1.
        seed: a shape `[2]` int tensor, the seed of the stateless random ops.

    Returns:
        An int tensor of the shape and dtype of `words`: each row the words
        left, in their order, then padding.
    """
    present = words != PADDING_ID
    draws = tf.random.stateless_uniform(tf.shape(words), seed=seed)
    kept = present & (draws >= rate)
    # A text whose every word was drawn for deletion keeps one of them.
    rescued = tf.one_hot(
        tf.argmax(tf.where(present, draws, -1.0), axis=1), tf.shape(words)[1], on_value=True, off_value=False
    )
    nothing_kept = tf.reduce_any(present, axis=1) & ~tf.reduce_any(kept, axis=1)
    kept |= nothing_kept[:, None] & rescued
    order = tf.argsort(tf.cast(~kept, tf.int32), axis=1, stable=True)  # kept words first, in order
    return tf.where(tf.gather(kept, order, batch_dims=1), tf.gather(words, order, batch_dims=1), tf.zeros_like(words))


def swap_adjacent_words(words, rate, seed):
    """Swaps each pair of adjacent words with probability `rate`; no two swaps share a word.

    A pair right after a pair drawn for a swap is not swapped, so slightly
    fewer pairs are swapped than `rate` says (`rate * (1 - rate)` of them).

    Args:
        words: an int tensor `(batch, length)` of word ids, each row its words
            then padding (`0`).
        rate: the probability of a swap, a float from 0 to 1.
        seed: a shape `[2]` int tensor, the seed of the stateless random ops.

    Returns:
        An int tensor of the shape and dtype of `words`, its padding where it was.
    """
    lengths = tf.math.count_nonzero(words != PADDING_ID, axis=1, dtype=tf.int32)
    positions = tf.range(tf.shape(words)[1])[None, :]
    drawn = tf.random.stateless_uniform(tf.shape(words), seed=seed) < rate
    drawn &= positions + 1 < lengths[:, None]  # a pair of two words
    first = drawn & ~shift_right(drawn)
    second = shift_right(first)
    source = tf.where(first, positions + 1, tf.where(second, positions - 1, positions))
    return tf.gather(words, source, batch_dims=1)


def shift_right(flags):
    """Each row of a bool matrix moved one place to the right, `False` coming in."""
    return tf.pad(flags[:, :-1], [[0, 0], [1, 0]], constant_values=False)


def shift_images(features, side, max_shift, seed, fill_value=0.0):
    """Moves each flattened square image by a random whole number of pixels.

    Each image moves by `dy` rows and `dx` columns, each drawn uniformly from
    `-max_shift .. max_shift`; the pixels that come in take `fill_value`.

    Args:
        features: a float tensor `(batch, side * side)`, each row an image in
            row-major order.
        side: the images' side in pixels.
        max_shift: the largest move, in pixels, in each direction.
        seed: a shape `[2]` int tensor, the seed of the stateless random ops.
        fill_value: the value of the pixels that come in. Defaults to `0.0`.

    Returns:
        A tensor of the shape and dtype of `features`.
    """
    if max_shift == 0:
        return features
    images = tf.reshape(features, [-1, side, side])
    padded = tf.pad(
        images,
        [[0, 0], [max_shift, max_shift], [max_shift, max_shift]],
        constant_values=tf.cast(fill_value, features.dtype),
    )
    offsets = tf.random.stateless_uniform(
        [tf.shape(images)[0], 2], seed=seed, minval=0, maxval=2 * max_shift + 1, dtype=tf.int32
    )
    pixels = tf.range(side)[None, :]
    rows = tf.gather(padded, offsets[:, :1] + pixels, axis=1, batch_dims=1)
    shifted = tf.gather(rows, offsets[:, 1:] + pixels, axis=2, batch_dims=1)
    return tf.reshape(shifted, tf.shape(features))


def max_shift_for(side):
    """The default largest shift for images of `side` pixels: a pixel per 28 of the side, rounded.

    Returns:
        An int: 0 (no shifts) for images under 16 pixels a side, 1 up to 41, ...
    """
    return round(side / PIXELS_PER_SHIFT)


def image_shifts(side, scaler, background, max_shift=None):
    """The batch function that shifts standardized images by a pixel or two.

    The features are the scaler's output, so the images are shifted in raw
    pixel values (`features * scale + mean`), the incoming pixels get the raw
    `background`, and the result is standardized again. With one mean and
    deviation for all pixels this is the same as filling with the scaled
    background; with a mean per pixel it is the only right fill.

    Args:
        side: the images' side in pixels.
        scaler: the fitted `FeatureScaler` (or scikit-learn `StandardScaler`)
            whose output the model takes.
        background: the raw value of a background pixel, such as 0.
        max_shift: the largest shift in pixels. Defaults to `None`
            (`max_shift_for(side)`).

    Returns:
        A function `(features, seed) -> features` for `augment_batches`.
    """
    max_shift = max_shift_for(side) if max_shift is None else max_shift
    standard = getattr(scaler, "scaler_", scaler)  # a FeatureScaler holds a StandardScaler
    mean = tf.constant(np.asarray(standard.mean_, np.float32))
    scale = tf.constant(np.asarray(standard.scale_, np.float32))

    def shift(features, seed):
        raw = features * scale + mean
        return (shift_images(raw, side, max_shift, seed, fill_value=background) - mean) / scale

    return shift


def background_value(images, side):
    """The most common value of the border pixels of raw images: their background.

    Args:
        images: a 2-D array of raw pixel values, one flattened image per row.
        side: the images' side in pixels.

    Returns:
        A float.
    """
    squares = np.asarray(images).reshape(-1, side, side)
    border = np.concatenate(
        [squares[:, 0, :], squares[:, -1, :], squares[:, :, 0], squares[:, :, -1]], axis=1
    ).ravel()
    values, counts = np.unique(np.round(border, 3), return_counts=True)
    return float(values[np.argmax(counts)])


class WordAugmentation:
    """Word deletions and swaps for the TextCNN's token-id and n-gram-id inputs.

    Built from the fitted `TextFeatures` and the training texts, it holds each
    training text as ids of its words (input `"words"`, which `add_words` adds
    to the training inputs) and the tables that turn words into token ids and
    into n-gram ids. Its batch function deletes and swaps words, then derives
    the `"tokens"` (and `"ngrams"`) of the changed texts exactly as the
    vectorizers would, cut or padded to the widths of the batch's own inputs,
    and drops `"words"`.

    A text is kept to its first `max(token length, n-gram length)` words, as
    many as the vectorizers read: deletions do not pull in later words.

    Args:
        features: the fitted `text_vectorization.TextFeatures`, with a
            `"tokens"` vectorizer and optionally an `"ngrams"` one, both of
            sequences with the same tokenizer.
        rate: the probability of a deletion and of a swap.
    """

    def __init__(self, features, rate):
        tokens = features.vectorizers["tokens"]
        ngrams = features.vectorizers.get("ngrams")
        if ngrams is not None and (ngrams.lowercase, ngrams.stop_words) != (tokens.lowercase, tokens.stop_words):
            raise ValueError("Expected token and n-gram vectorizers with the same lowercasing and stop words.")
        self.rate = float(rate)
        self.tokens = tokens
        self.ngrams = ngrams
        self.max_n = int(ngrams.ngram_range[1]) if ngrams is not None else 1
        # A binary n-gram vectorizer (naive-Bayes weighting) lists each distinct id once.
        self.distinct_ngrams = bool(getattr(ngrams, "binary", False))
        self.width = max(tokens.sequence_length_, ngrams.sequence_length_ if ngrams is not None else 0)
        words = TextVectorizer(ngram_range=(1, 1), lowercase=tokens.lowercase, stop_words=tokens.stop_words)
        self._analyzer = words._analyzer()
        self.word_ids = {}

    def word_sequences(self, texts):
        """The word ids of `texts`, a new id for each word not seen before.

        Returns:
            An int32 array `(len(texts), width)`, each row its first words then
            padding.
        """
        rows = np.zeros((len(texts), self.width), np.int32)
        for row, text in enumerate(texts):
            words = self._analyzer(text)[: self.width]
            rows[row, : len(words)] = [self.word_ids.setdefault(word, len(self.word_ids) + 1) for word in words]
        return rows

    def add_words(self, inputs, texts):
        """The training inputs with the `"words"` input that the batch function reads."""
        words = self.word_sequences(texts)
        self._build_tables()
        return {**inputs, "words": words}

    def _build_tables(self):
        vocabulary = list(self.word_ids)  # in id order: id i + 1 is vocabulary[i]
        token_ids = [PADDING_ID] + [self.tokens.vocabulary_.get(word, UNKNOWN_ID) for word in vocabulary]
        self.word_token_ids = tf.constant(np.asarray(token_ids, np.int32))
        if self.ngrams is None:
            return
        # A prefix tree of the n-gram vocabulary over word ids: node w is the
        # word w; a longer n-gram is the node keyed (its prefix's node, last word).
        word_count = len(vocabulary)
        self.key_base = word_count + 1
        node_ngram_ids = [PADDING_ID] + [self.ngrams.vocabulary_.get(word, UNKNOWN_ID) for word in vocabulary]
        children = {}
        for ngram, ngram_id in sorted(self.ngrams.vocabulary_.items(), key=lambda item: item[1]):
            words = ngram.split(" ")
            if len(words) < 2 or any(word not in self.word_ids for word in words):
                continue
            node = self.word_ids[words[0]]
            for word in words[1:]:
                key = node * self.key_base + self.word_ids[word]
                if key not in children:
                    children[key] = len(node_ngram_ids)
                    node_ngram_ids.append(UNKNOWN_ID)
                node = children[key]
            node_ngram_ids[node] = ngram_id
        self.missing_node = len(node_ngram_ids)  # an n-gram the vocabulary has no prefix of
        node_ngram_ids.append(UNKNOWN_ID)
        keys = np.asarray(sorted(children), np.int64)
        self.child_keys = tf.constant(np.concatenate([keys, [np.iinfo(np.int64).max]]))
        self.child_nodes = tf.constant(
            np.asarray([children[key] for key in keys] + [self.missing_node], np.int64)
        )
        self.node_ngram_ids = tf.constant(np.asarray(node_ngram_ids, np.int32))

    def __call__(self, inputs, seed):
        """The batch function: changed words, and the inputs derived from them."""
        inputs = dict(inputs)
        words = inputs.pop("words")
        changed = delete_and_swap_words(words, self.rate, seed)
        derived = self.derive(changed, {name: tf.shape(value)[1] for name, value in inputs.items()})
        has_words = tf.reduce_any(words != PADDING_ID, axis=1)[:, None]
        return {name: tf.where(has_words, derived[name], value) for name, value in inputs.items()}

    def derive(self, words, widths):
        """The `"tokens"` (and `"ngrams"`) inputs of rows of word ids.

        Args:
            words: an int tensor `(batch, length)` of word ids then padding.
            widths: a dict from input name to the width of that input.

        Returns:
            A dict from input name to an int32 tensor `(batch, width)`.
        """
        derived = {"tokens": fit_width(tf.gather(self.word_token_ids, words), widths["tokens"])}
        if "ngrams" in widths:
            derived["ngrams"] = fit_width(self.ngram_ids(words), widths["ngrams"])
        return derived

    def ngram_ids(self, words):
        """N-gram ids of rows of word ids, in the vectorizer's order: all unigrams, then bigrams, ..."""
        words = tf.cast(words, tf.int64)
        lengths = tf.math.count_nonzero(words, axis=1)
        positions = tf.range(tf.shape(words, out_type=tf.int64)[1])[None, :]
        nodes = words
        blocks, valid = [], []
        for n in range(1, self.max_n + 1):
            if n > 1:
                keys = nodes[:, :-1] * self.key_base + words[:, n - 1 :]
                found = tf.searchsorted(self.child_keys, tf.reshape(keys, [-1]))
                found = tf.reshape(found, tf.shape(keys))
                matches = tf.gather(self.child_keys, found) == keys
                nodes = tf.where(matches, tf.gather(self.child_nodes, found), self.missing_node)
                positions = positions[:, :-1]
            blocks.append(tf.gather(self.node_ngram_ids, nodes))
            valid.append(positions + n <= lengths[:, None])
        ids = tf.concat(blocks, axis=1)
        valid = tf.concat(valid, axis=1)
        if self.distinct_ngrams:
            valid &= first_occurrences(ids, valid)
        order = tf.argsort(tf.cast(~valid, tf.int32), axis=1, stable=True)
        return tf.where(tf.gather(valid, order, batch_dims=1), tf.gather(ids, order, batch_dims=1), PADDING_ID)


def first_occurrences(ids, valid):
    """Whether each valid id is the first of its value in its row (a stable sort finds them)."""
    keyed = tf.where(valid, ids, tf.int32.max)  # invalid entries sort last
    order = tf.argsort(keyed, axis=1, stable=True)
    ordered = tf.gather(keyed, order, batch_dims=1)
    first_in_order = tf.concat([tf.ones_like(ordered[:, :1], tf.bool), ordered[:, 1:] != ordered[:, :-1]], axis=1)
    first = tf.gather(first_in_order, tf.argsort(order, axis=1, stable=True), batch_dims=1)
    return first & valid


def fit_width(ids, width):
    """Rows of ids cut or padded with `PADDING_ID` to `width` columns."""
    ids = ids[:, :width]
    return tf.pad(ids, [[0, 0], [0, width - tf.shape(ids)[1]]], constant_values=PADDING_ID)


def for_words(features, train_examples, train_inputs, rate):
    """Word deletions and adjacent swaps of the training texts at `rate`, as the TextCNN trains with them.

    The changed texts' token ids and n-gram ids are derived again in the input
    pipeline (see `WordAugmentation`), so the training inputs get the texts'
    word ids as one more input, `"words"`.

    Args:
        features: the fitted `TextFeatures`.
        train_examples: the training split, an `Examples` of texts.
        train_inputs: the model inputs of the training split.
        rate: the probability of each deletion and each swap; 0 changes nothing.

    Returns:
        A `TrainingAugmentation`.
    """
    if rate == 0:
        return TrainingAugmentation(train_inputs)
    words = WordAugmentation(features, rate)
    return TrainingAugmentation.of_batches(
        words.add_words(train_inputs, train_examples.inputs),
        words,
        f"word deletions and adjacent swaps at rate {rate:g}",
    )


def for_pixels(scaler, train_examples, train_features, max_shift=0):
    """Shifts of a pixel or two of image-shaped numeric features, as the MLP trains with them.

    The largest shift is `max_shift`, or with 0 one pixel per 28 of the image
    side, rounded, which leaves images under 16 pixels a side (such as the 8x8
    digits) unshifted. Text features and numeric tables that are not
    image-shaped (see `kerastrain.data.images.image_side`) are left as they
    are; the description says what was chosen, and why.

    Args:
        scaler: the fitted `FeatureScaler` (or text vectorizer, for text).
        train_examples: the training split, an `Examples` of raw values.
        train_features: the model inputs of the training split.
        max_shift: the largest shift in pixels; 0 picks it from the side.
            Defaults to `0`.

    Returns:
        A `TrainingAugmentation`.
    """
    from kerastrain.data import images

    if train_examples.is_text:
        return TrainingAugmentation(
            train_features, description="none for bag-of-words features (the TextCNN recipe augments text)"
        )
    side = images.image_side(train_examples.inputs)
    if not side:
        return TrainingAugmentation(
            train_features,
            description=f"none, as the {train_features.shape[1]} feature columns are not the pixels of a square image",
        )
    max_shift = max_shift or max_shift_for(side)
    if not max_shift:
        return TrainingAugmentation(
            train_features,
            description=f"none, as {side}x{side} images are too small to shift unasked (--augment-shift 1 shifts them)",
        )
    background = background_value(train_examples.inputs, side)
    shift = image_shifts(side, scaler, background, max_shift)
    pixels = "1 pixel" if max_shift == 1 else f"{max_shift} pixels"
    return TrainingAugmentation.of_batches(train_features, shift, f"shifts of up to {pixels} of the {side}x{side} images")
