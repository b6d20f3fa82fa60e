"""scikit-learn transformers that turn raw text into model inputs.

`TextVectorizer` fits a vocabulary with `CountVectorizer`'s analyzer (its
tokenizer, lowercasing, stop words and word n-grams) and outputs either padded
token-id sequences, for an embedding layer, or bag-of-words counts, binary
indicators or TF-IDF weights, for an MLP. Fitted with labels, it can also learn
the naive-Bayes log-count ratio of every token for every class (Wang and
Manning 2012), the weights of an NB-weighted linear model. `TextFeatures` bundles several of them
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
        binary: sequences only: each distinct id once per text, in order of
            first appearance, as a set of present tokens or n-grams (for a
            bag of binary features). Defaults to `False`.
        log_count_ratios: sequences only: `fit(texts, labels)` also learns
            `log_count_ratios_`, an array `(vocabulary_size, num_classes)`:
            for each class `c` (one against the rest), `r = log((p / |p|_1) /
            (q / |q|_1))`, with `p` and `q` the number of texts of class `c`
            and of the other classes that contain the token, plus `alpha`.
            Padding and unknown ids get `0`. Columns follow the sorted labels
            (`classes_`). Defaults to `False`.
        alpha: the smoothing count added to `p` and `q`. Defaults to `1.0`.

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
        binary=False,
        log_count_ratios=False,
        alpha=1.0,
    ):
        self.output = output
        self.max_tokens = max_tokens
        self.sequence_length = sequence_length
        self.min_sequence_length = min_sequence_length
        self.ngram_range = ngram_range
        self.lowercase = lowercase
        self.stop_words = stop_words
        self.binary = binary
        self.log_count_ratios = log_count_ratios
        self.alpha = alpha

    def fit(self, texts, y=None):
        """Learns the vocabulary (and the sequence length) from `texts`.

        Args:
            texts: the training texts.
            y: their labels; needed (and only used) with `log_count_ratios`.
                Defaults to `None`.
        """
        if self.output not in OUTPUTS:
            raise UsageError(
                f"Expected output to be one of {', '.join(OUTPUTS)}. Received: output={self.output!r}"
            )
        check_not_a_single_string(texts)
        texts = list(texts)
        if self.output == "sequences":
            self._fit_sequences(texts)
            if self.log_count_ratios:
                if y is None:
                    raise ValueError("log_count_ratios=True needs the labels: call fit(texts, labels).")
                self._fit_log_count_ratios(texts, np.asarray(y))
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

    def __setstate__(self, state):
        # A vectorizer pickled without these options reads as one without them.
        for name, default in (("binary", False), ("log_count_ratios", False), ("alpha", 1.0)):
            state.setdefault(name, default)
        super().__setstate__(state)

    def _fit_sequences(self, texts):
        analyzer = self._analyzer()
        frequencies = collections.Counter()
        document_frequencies = collections.Counter()
        lengths = []
        for text in texts:
            tokens = analyzer(text)
            frequencies.update(tokens)
            distinct = set(tokens)
            document_frequencies.update(distinct)
            lengths.append(len(distinct) if self.binary else len(tokens))
        if not frequencies:
            raise UsageError(
                "Cannot build a vocabulary: the training texts contain no words (only punctuation, symbols "
                "or emoji). Pass the column of texts with --text-column, or data whose texts have words."
            )
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

    def _fit_log_count_ratios(self, texts, labels):
        if len(labels) != len(texts):
            raise ValueError(f"Expected one label per text. Received: {len(labels)} labels, {len(texts)} texts")
        analyzer = self._analyzer()
        vocabulary = self.vocabulary_
        self.classes_, label_ids = np.unique(labels, return_inverse=True)
        token_ids, token_labels = [], []
        for text, label_id in zip(texts, label_ids):
            ids = {vocabulary[token] for token in analyzer(text) if token in vocabulary}
            token_ids.extend(ids)
            token_labels.extend([label_id] * len(ids))
        # Texts of each class that contain each token: (vocabulary_size, num_classes).
        counts = np.zeros((self.vocabulary_size, len(self.classes_)))
        np.add.at(counts, (np.asarray(token_ids, np.int64), np.asarray(token_labels, np.int64)), 1.0)
        in_class = counts[2:]
        in_rest = in_class.sum(axis=1, keepdims=True) - in_class
        p = in_class + self.alpha
        q = in_rest + self.alpha
        ratios = np.log(p / p.sum(axis=0)) - np.log(q / q.sum(axis=0))
        padding_and_unknown = np.zeros((2, len(self.classes_)))
        self.log_count_ratios_ = np.concatenate([padding_and_unknown, ratios]).astype(np.float32)

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
            tokens = analyzer(text)
            if self.binary:
                # Every distinct id once (unknown n-grams all map to one id), in order of first appearance.
                token_ids = list(dict.fromkeys(vocabulary.get(token, UNKNOWN_ID) for token in tokens))
            else:
                token_ids = [vocabulary.get(token, UNKNOWN_ID) for token in tokens[: self.sequence_length_]]
            token_ids = token_ids[: self.sequence_length_]
            if token_ids:
                ids[row, : len(token_ids)] = token_ids
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
            description = f"{len(self.vocabulary_):,} {unit}, sequences of up to {self.sequence_length_}"
            if getattr(self, "log_count_ratios_", None) is not None:
                description += (
                    f", weighted by their naive-Bayes log-count ratios for {len(self.classes_)} classes"
                )
            return description
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
        """Fits every vectorizer on `texts` (and the labels `y`, for those that use them)."""
        check_not_a_single_string(texts)
        texts = list(texts)
        for vectorizer in self.vectorizers.values():
            vectorizer.fit(texts, y)
        return self

    def transform(self, texts):
        check_not_a_single_string(texts)
        texts = list(texts)
        return {name: vectorizer.transform(texts) for name, vectorizer in self.vectorizers.items()}

    takes_text = True

    def model_inputs(self, texts):
        """The model's named inputs for `texts`: a dict from input name to array."""
        return self.transform(texts)

    def set_embedding_matrix(self, loaded):
        """Attaches pretrained word vectors for the model builder, without pickling them.

        `embedding_matrix_` is left out when the features are pickled (a word
        vector table can be hundreds of megabytes, and the trained model holds
        it anyway); the count of words that had a vector is kept, for
        `describe()`.

        Args:
            loaded: what `kerastrain.embeddings.load_embedding_matrix` returned.
        """
        self.embedding_matrix_ = loaded.matrix
        self.embedding_summary_ = loaded.describe()

    def set_ngram_start(self, start):
        """Attaches the fitted starting weights of the model's n-gram branch, pickled with the features.

        They are as large as the n-gram vectorizer's log-count ratios, which
        are pickled too, and a resumed run or an evaluator rebuilds the model
        it started with from them.

        Args:
            start: what `kerastrain.ngram_start.fit_logistic_regression` returned.
        """
        self.ngram_start_ = start

    def ngram_branch(self):
        """What a model's n-gram branch needs from these features, as keyword arguments of `build_textcnn`.

        Returns:
            A dict with `ngram_vocabulary_size` (0 without an `"ngrams"`
            vectorizer), `ngram_weights` (the log-count ratios or the IDF
            weights), and, where `set_ngram_start` attached a start,
            `ngram_initial_weights`, `initial_biases` and `ngram_l2`.
        """
        ngrams = self.vectorizers.get("ngrams")
        if ngrams is None:
            return {"ngram_vocabulary_size": 0}
        arguments = {
            "ngram_vocabulary_size": ngrams.vocabulary_size,
            "ngram_weights": ngrams.log_count_ratios_ if ngrams.log_count_ratios else ngrams.idf_,
        }
        start = getattr(self, "ngram_start_", None)
        if start is not None:
            arguments.update(ngram_initial_weights=start.weights, initial_biases=start.biases, ngram_l2=start.l2)
        return arguments

    def describe(self):
        """The vectorizers' vocabularies (and the word vectors) in a few words, for a run's first line.

        Returns:
            A string such as `"8,211 words, sequences of up to 37; 20,000
            1-2-grams, sequences of up to 70, weighted by their naive-Bayes
            log-count ratios for 2 classes, starting from NB-weighted logistic
            regression; 7,406 of 8,211 words had a vector in glove.txt.gz"`.
        """
        parts = []
        for name, vectorizer in self.vectorizers.items():
            parts.append(vectorizer.describe())
            if name == "ngrams" and getattr(self, "ngram_start_", None) is not None:
                parts[-1] += ", starting from NB-weighted logistic regression"
        if getattr(self, "embedding_summary_", None):
            parts.append(self.embedding_summary_)
        return "; ".join(parts)

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        state.pop("embedding_matrix_", None)
        return state
