"""scikit-learn transformers that turn raw text into model inputs.

`TextVectorizer` fits a vocabulary with `CountVectorizer`'s analyzer (its
tokenizer, lowercasing, stop words and word n-grams) and outputs either padded
token-id sequences, for an embedding layer, or bag-of-words counts, binary
indicators or TF-IDF weights, for an MLP. `TextFeatures` bundles several of them
into the named inputs of a multi-input Keras model. Both are fitted on the
training texts and pickled with the model, so predictions take raw text.
"""

import collections

import numpy as np
from sklearn import base
from sklearn.feature_extraction import text as sklearn_text

from kerastrain.errors import UsageError

OUTPUTS = ("sequences", "counts", "binary", "tfidf")
# Words of one character or more: CountVectorizer's default (two or more) drops
# "a" and "I", which short texts such as questions and SMS need.
TOKEN_PATTERN = r"(?u)\b\w+\b"
PADDING_ID = 0
UNKNOWN_ID = 1


def check_not_a_single_string(texts):
    if isinstance(texts, str):
        raise TypeError("Expected a list of texts. Received a single string; wrap it in a list.")


class TextVectorizer(base.TransformerMixin, base.BaseEstimator):
    """Turns texts into token-id sequences or bag-of-words feature rows.

    Args:
        output: `"sequences"` (int32 token ids, padded with 0; 1 is an unknown
            token), `"counts"`, `"binary"` or `"tfidf"` (float32 rows).
            Defaults to `"sequences"`.
        max_tokens: vocabulary size; for sequences it includes the padding and
            unknown ids. Defaults to `20000`.
        sequence_length: tokens kept per text (sequences only); `0` picks the 95th
            percentile of the training texts' lengths. Defaults to `0`.
        min_sequence_length: the smallest length `0` may pick, such as the widest
            convolution kernel. Defaults to `1`.
        ngram_range: smallest and largest word n-gram, as in `CountVectorizer`.
            Defaults to `(1, 1)`.
        lowercase: whether to lowercase before tokenizing. Defaults to `True`.
        stop_words: `None`, `"english"` or a list of words to drop. Defaults to
            `None`.

    Example:

    ```python
    vectorizer = TextVectorizer(output="sequences", max_tokens=1000)
    ids = vectorizer.fit_transform(["free prize now", "see you at noon"])
    ids.shape  # (2, 4)
    ```
    """

    def __init__(
        self,
        output="sequences",
        max_tokens=20000,
        sequence_length=0,
        min_sequence_length=1,
        ngram_range=(1, 1),
        lowercase=True,
        stop_words=None,
    ):
        self.output = output
        self.max_tokens = max_tokens
        self.sequence_length = sequence_length
        self.min_sequence_length = min_sequence_length
        self.ngram_range = ngram_range
        self.lowercase = lowercase
        self.stop_words = stop_words

    def fit(self, texts, y=None):
        """Learns the vocabulary (and the sequence length) from `texts`."""
        if self.output not in OUTPUTS:
            raise UsageError(
                f"Expected output to be one of {', '.join(OUTPUTS)}. Received: output={self.output!r}"
            )
        check_not_a_single_string(texts)
        texts = list(texts)
        if self.output == "sequences":
            self._fit_sequences(texts)
        else:
            vectorizer_class = (
                sklearn_text.TfidfVectorizer if self.output == "tfidf" else sklearn_text.CountVectorizer
            )
            self.bag_of_words_ = vectorizer_class(
                lowercase=self.lowercase,
                stop_words=self.stop_words,
                token_pattern=TOKEN_PATTERN,
                ngram_range=tuple(self.ngram_range),
                max_features=self.max_tokens,
                binary=self.output == "binary",
                dtype=np.float32,
            )
            try:
                self.bag_of_words_.fit(texts)
            except ValueError as error:  # "empty vocabulary" and the like.
                raise UsageError(f"Cannot build a vocabulary from these texts: {error}") from None
            self.vocabulary_ = self.bag_of_words_.vocabulary_
        return self

    def _fit_sequences(self, texts):
        analyzer = self._analyzer()
        frequencies = collections.Counter()
        document_frequencies = collections.Counter()
        lengths = []
        for text in texts:
            tokens = analyzer(text)
            frequencies.update(tokens)
            document_frequencies.update(set(tokens))
            lengths.append(len(tokens))
        if not frequencies:
            raise UsageError("Cannot build a vocabulary: the training texts contain no words.")
        # Most frequent first; ties in alphabetical order so fitting is deterministic.
        ranked = sorted(frequencies.items(), key=lambda item: (-item[1], item[0]))
        kept = ranked[: max(self.max_tokens - 2, 1)]
        self.vocabulary_ = {token: index + 2 for index, (token, _) in enumerate(kept)}
        # Smoothed inverse document frequency, as TfidfVectorizer computes it;
        # padding weighs 0 and an unknown token the least a known one can.
        counts = np.asarray([document_frequencies[token] for token, _ in kept], dtype=np.float64)
        idf = np.log((1.0 + len(texts)) / (1.0 + counts)) + 1.0
        self.idf_ = np.concatenate([[0.0, 1.0], idf]).astype(np.float32)
        if self.sequence_length:
            self.sequence_length_ = int(self.sequence_length)
        else:
            self.sequence_length_ = int(np.ceil(np.percentile(lengths, 95)))
        self.sequence_length_ = max(self.sequence_length_, int(self.min_sequence_length), 1)

    def _analyzer(self):
        return sklearn_text.CountVectorizer(
            lowercase=self.lowercase,
            stop_words=self.stop_words,
            token_pattern=TOKEN_PATTERN,
            ngram_range=tuple(self.ngram_range),
        ).build_analyzer()

    def transform(self, texts):
        """Vectorizes `texts` with the fitted vocabulary.

        Returns:
            An int32 array `(len(texts), sequence_length_)` for sequences, else
            a float32 array `(len(texts), vocabulary_size)`.
        """
        if not hasattr(self, "vocabulary_"):
            raise RuntimeError("This TextVectorizer is not fitted yet: call fit(texts) first.")
        check_not_a_single_string(texts)
        if self.output != "sequences":
            return self.bag_of_words_.transform(texts).toarray()
        analyzer = self._analyzer()
        vocabulary = self.vocabulary_
        texts = list(texts)
        ids = np.full((len(texts), self.sequence_length_), PADDING_ID, dtype=np.int32)
        for row, text in enumerate(texts):
            tokens = analyzer(text)[: self.sequence_length_]
            if tokens:
                ids[row, : len(tokens)] = [vocabulary.get(token, UNKNOWN_ID) for token in tokens]
            else:
                # A text without words (only emoji, say) reads as one unknown token,
                # never as all padding, which masked layers would average over nothing.
                ids[row, 0] = UNKNOWN_ID
        return ids

    @property
    def vocabulary_size(self):
        """Number of distinct ids or feature columns the output can hold."""
        if self.output == "sequences":
            return len(self.vocabulary_) + 2
        return len(self.vocabulary_)

    @property
    def num_features(self):
        """Columns of the bag-of-words output (for `"sequences"`, the number of ids)."""
        return self.vocabulary_size

    takes_text = True

    def model_inputs(self, texts):
        """The model's input for `texts`: int32 token ids, or a float32 feature matrix."""
        outputs = self.transform(texts)
        return outputs if self.output == "sequences" else outputs.astype(np.float32)

    def describe(self):
        """A few words on the fitted vocabulary, such as "5,000 tfidf features of words"."""
        low, high = tuple(self.ngram_range)
        unit = "words" if high == 1 else f"{low}-{high}-grams"
        if self.output == "sequences":
            return f"{len(self.vocabulary_):,} {unit}, sequences of up to {self.sequence_length_}"
        return f"{self.vocabulary_size:,} {self.output} features of {unit}"


class TextFeatures(base.TransformerMixin, base.BaseEstimator):
    """Several vectorizers whose outputs are the named inputs of one model.

    Args:
        vectorizers: a dict from a Keras input name to a `TextVectorizer`.

    Example:

    ```python
    features = TextFeatures({
        "tokens": TextVectorizer("sequences"),
        "ngrams": TextVectorizer("sequences", ngram_range=(1, 2)),
    })
    inputs = features.fit_transform(texts)  # {"tokens": ..., "ngrams": ...}
    ```
    """

    def __init__(self, vectorizers):
        self.vectorizers = vectorizers

    def fit(self, texts, y=None):
        check_not_a_single_string(texts)
        texts = list(texts)
        for vectorizer in self.vectorizers.values():
            vectorizer.fit(texts)
        return self

    def transform(self, texts):
        check_not_a_single_string(texts)
        texts = list(texts)
        return {name: vectorizer.transform(texts) for name, vectorizer in self.vectorizers.items()}

    takes_text = True

    def model_inputs(self, texts):
        """The model's named inputs for `texts`: a dict from input name to array."""
        return self.transform(texts)

    def describe(self):
        """The vectorizers' vocabularies in a few words, such as "19,998 words, sequences of up to 37"."""
        return "; ".join(vectorizer.describe() for vectorizer in self.vectorizers.values())
