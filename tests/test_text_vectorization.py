"""TextVectorizer and TextFeatures: sequences, bag-of-words outputs, pickling, sklearn API."""

import joblib
import numpy as np
import pytest
from sklearn import base, pipeline
from sklearn.linear_model import LogisticRegression

from kerastrain.errors import UsageError
from kerastrain.text_vectorization import PADDING_ID, UNKNOWN_ID, TextFeatures, TextVectorizer

TEXTS = [
    "free prize now",
    "free cash now now",
    "see you at noon",
    "free entry win",
    "are you at home",
]


# Sequences.


def test_sequences_shape_and_dtype():
    ids = TextVectorizer(sequence_length=6).fit_transform(TEXTS)
    assert ids.shape == (len(TEXTS), 6)
    assert ids.dtype == np.int32


def test_sequences_are_padded_with_zero_after_the_tokens():
    vectorizer = TextVectorizer(sequence_length=6).fit(TEXTS)
    ids = vectorizer.transform(["free prize"])
    assert ids[0, 0] == vectorizer.vocabulary_["free"]
    assert ids[0, 1] == vectorizer.vocabulary_["prize"]
    assert ids[0, 2:].tolist() == [PADDING_ID] * 4
    assert PADDING_ID == 0


def test_unknown_words_get_id_1():
    vectorizer = TextVectorizer(sequence_length=3).fit(TEXTS)
    ids = vectorizer.transform(["free zebra now"])
    assert ids[0].tolist() == [vectorizer.vocabulary_["free"], UNKNOWN_ID, vectorizer.vocabulary_["now"]]
    assert UNKNOWN_ID == 1


def test_most_frequent_word_gets_id_2():
    vectorizer = TextVectorizer().fit(TEXTS)
    # "free" and "now" appear three times each; ties are broken alphabetically.
    assert vectorizer.vocabulary_["free"] == 2
    assert vectorizer.vocabulary_["now"] == 3
    assert min(vectorizer.vocabulary_.values()) == 2
    assert sorted(vectorizer.vocabulary_.values()) == list(range(2, 2 + len(vectorizer.vocabulary_)))


def test_ties_are_ordered_alphabetically_and_independently_of_text_order():
    texts = ["delta alpha", "charlie bravo"]
    vectorizer = TextVectorizer().fit(texts)
    assert vectorizer.vocabulary_ == {"alpha": 2, "bravo": 3, "charlie": 4, "delta": 5}
    assert TextVectorizer().fit(texts[::-1]).vocabulary_ == vectorizer.vocabulary_


def test_max_tokens_counts_padding_and_unknown_ids():
    vectorizer = TextVectorizer(max_tokens=4).fit(TEXTS)
    assert set(vectorizer.vocabulary_) == {"free", "now"}
    assert vectorizer.vocabulary_size == 4
    ids = vectorizer.transform(["free prize now"])
    assert ids[0, :3].tolist() == [2, UNKNOWN_ID, 3]
    assert ids.max() < vectorizer.vocabulary_size


def test_vocabulary_size_covers_every_id():
    vectorizer = TextVectorizer().fit(TEXTS)
    assert vectorizer.vocabulary_size == len(vectorizer.vocabulary_) + 2
    assert vectorizer.transform(TEXTS).max() == vectorizer.vocabulary_size - 1


def test_sequence_length_auto_is_the_95th_percentile():
    texts = [" ".join(["word"] * length) for length in range(1, 22)]  # lengths 1..21
    vectorizer = TextVectorizer().fit(texts)
    assert vectorizer.sequence_length_ == 20  # np.percentile(1..21, 95) == 20
    ids = vectorizer.transform(texts)
    assert ids.shape == (21, 20)
    assert (ids[-1] == 2).all()  # the 21-token text is cut to 20


def test_sequence_length_auto_rounds_up():
    texts = ["a"] * 19 + [" ".join(["b"] * 10)]  # 95th percentile: 1.45
    assert TextVectorizer().fit(texts).sequence_length_ == 2


def test_min_sequence_length_raises_the_auto_length():
    vectorizer = TextVectorizer(min_sequence_length=5).fit(["short text", "tiny"])
    assert vectorizer.sequence_length_ == 5
    assert vectorizer.transform(["short text"]).shape == (1, 5)


def test_explicit_sequence_length_truncates():
    vectorizer = TextVectorizer(sequence_length=2).fit(TEXTS)
    ids = vectorizer.transform(["see you at noon"])
    assert ids.shape == (1, 2)
    assert ids[0].tolist() == [vectorizer.vocabulary_["see"], vectorizer.vocabulary_["you"]]


def test_explicit_sequence_length_wins_over_the_percentile():
    assert TextVectorizer(sequence_length=9).fit(TEXTS).sequence_length_ == 9


def test_text_without_words_is_one_unknown_token():
    vectorizer = TextVectorizer(sequence_length=4).fit(TEXTS)
    ids = vectorizer.transform(["!!! ???", ""])
    assert ids.tolist() == [[UNKNOWN_ID, 0, 0, 0], [UNKNOWN_ID, 0, 0, 0]]


def test_one_character_words_are_kept():
    vectorizer = TextVectorizer().fit(["I am a fan", "a b c"])
    assert {"i", "a", "b", "c"} <= set(vectorizer.vocabulary_)
    assert vectorizer.vocabulary_["a"] == 2


def test_lowercase_option():
    assert set(TextVectorizer().fit(["Free FREE free"]).vocabulary_) == {"free"}
    assert set(TextVectorizer(lowercase=False).fit(["Free FREE free"]).vocabulary_) == {"Free", "FREE", "free"}


def test_stop_words_are_dropped():
    vectorizer = TextVectorizer(stop_words=["the", "a"]).fit(["the cat", "a dog"])
    assert set(vectorizer.vocabulary_) == {"cat", "dog"}


def test_ngram_sequences():
    vectorizer = TextVectorizer(ngram_range=(1, 2), sequence_length=5).fit(["free prize now", "free prize"])
    assert {"free prize", "prize now"} <= set(vectorizer.vocabulary_)
    ids = vectorizer.transform(["free prize now"])[0]
    vocabulary = vectorizer.vocabulary_
    expected = [vocabulary[token] for token in ("free", "prize", "now", "free prize", "prize now")]
    assert ids.tolist() == expected


def test_ngram_sequence_length_counts_ngrams():
    vectorizer = TextVectorizer(ngram_range=(1, 2)).fit(["a b c"] * 20)
    assert vectorizer.sequence_length_ == 5  # 3 words + 2 bigrams


def test_texts_without_any_word_cannot_be_fitted():
    with pytest.raises(UsageError) as excinfo:
        TextVectorizer().fit(["!!!", "???"])
    assert "no words" in str(excinfo.value)


def test_unknown_output_is_refused():
    with pytest.raises(UsageError) as excinfo:
        TextVectorizer(output="embeddings").fit(TEXTS)
    assert "output='embeddings'" in str(excinfo.value)


# Bag-of-words outputs.


@pytest.mark.parametrize("output", ["tfidf", "counts", "binary"])
def test_bag_of_words_outputs_are_dense_float32(output):
    vectorizer = TextVectorizer(output=output).fit(TEXTS)
    rows = vectorizer.transform(TEXTS)
    assert isinstance(rows, np.ndarray)
    assert rows.dtype == np.float32
    assert rows.shape == (len(TEXTS), vectorizer.vocabulary_size)
    assert vectorizer.vocabulary_size == len(vectorizer.vocabulary_)


@pytest.mark.parametrize("output", ["tfidf", "counts", "binary"])
def test_bag_of_words_vocabulary_is_capped_by_max_tokens(output):
    vectorizer = TextVectorizer(output=output, max_tokens=3).fit(TEXTS)
    assert vectorizer.vocabulary_size == 3
    assert vectorizer.transform(TEXTS).shape == (len(TEXTS), 3)
    assert {"free", "now"} <= set(vectorizer.vocabulary_)


def test_counts_count_and_binary_indicates():
    counts = TextVectorizer(output="counts").fit(TEXTS)
    binary = TextVectorizer(output="binary").fit(TEXTS)
    column = counts.vocabulary_["now"]
    assert counts.transform(["now now now"])[0, column] == 3
    assert binary.transform(["now now now"])[0, binary.vocabulary_["now"]] == 1
    assert set(np.unique(binary.transform(TEXTS))) <= {0.0, 1.0}


def test_tfidf_rows_are_unit_length():
    rows = TextVectorizer(output="tfidf").fit_transform(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-5)


def test_bag_of_words_keeps_one_character_words_and_ngrams():
    vectorizer = TextVectorizer(output="counts", ngram_range=(1, 2)).fit(["i a m", "x y"])
    assert {"i", "a", "i a", "x y"} <= set(vectorizer.vocabulary_)


def test_bag_of_words_with_no_words_cannot_be_fitted():
    with pytest.raises(UsageError) as excinfo:
        TextVectorizer(output="tfidf").fit(["!!!", "???"])
    assert "vocabulary" in str(excinfo.value)


# Misuse.


@pytest.mark.parametrize("output", ["sequences", "tfidf"])
def test_transform_before_fit_raises(output):
    with pytest.raises(RuntimeError, match="not fitted"):
        TextVectorizer(output=output).transform(TEXTS)


@pytest.mark.parametrize("output", ["sequences", "counts"])
def test_transform_of_a_single_string_raises_type_error(output):
    vectorizer = TextVectorizer(output=output).fit(TEXTS)
    with pytest.raises(TypeError, match="single string"):
        vectorizer.transform("free prize now")


@pytest.mark.parametrize("output", ["sequences", "counts"])
def test_fit_of_a_single_string_raises_type_error(output):
    # list("free prize now") is a list of characters: fitting must refuse it
    # rather than learn a vocabulary of letters.
    with pytest.raises(TypeError):
        TextVectorizer(output=output).fit("free prize now")


def test_text_features_transform_of_a_single_string_raises_type_error():
    features = TextFeatures({"tokens": TextVectorizer()}).fit(TEXTS)
    with pytest.raises(TypeError):
        features.transform("free prize now")


def test_transform_accepts_any_iterable_of_texts():
    vectorizer = TextVectorizer(sequence_length=4).fit(TEXTS)
    np.testing.assert_array_equal(vectorizer.transform(tuple(TEXTS)), vectorizer.transform(TEXTS))
    np.testing.assert_array_equal(vectorizer.transform(iter(TEXTS)), vectorizer.transform(TEXTS))
    np.testing.assert_array_equal(
        vectorizer.transform(np.asarray(TEXTS, dtype=object)), vectorizer.transform(TEXTS)
    )


# Persistence and the sklearn API.


@pytest.mark.parametrize("output", ["sequences", "tfidf", "binary"])
def test_joblib_round_trip_gives_identical_output(tmp_path, output):
    vectorizer = TextVectorizer(output=output, ngram_range=(1, 2)).fit(TEXTS)
    path = tmp_path / "vectorizer.joblib"
    joblib.dump(vectorizer, path)
    loaded = joblib.load(path)
    new_texts = ["free zebra at noon", "!!!", "you win"]
    np.testing.assert_array_equal(loaded.transform(new_texts), vectorizer.transform(new_texts))
    assert loaded.vocabulary_ == vectorizer.vocabulary_
    assert loaded.get_params() == vectorizer.get_params()


def test_joblib_round_trip_of_text_features(tmp_path):
    features = TextFeatures(
        {"tokens": TextVectorizer(), "ngrams": TextVectorizer(ngram_range=(1, 2))}
    ).fit(TEXTS)
    joblib.dump(features, tmp_path / "features.joblib")
    loaded = joblib.load(tmp_path / "features.joblib")
    expected, actual = features.transform(TEXTS), loaded.transform(TEXTS)
    assert list(actual) == ["tokens", "ngrams"]
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name])


def test_text_features_returns_named_arrays():
    features = TextFeatures(
        {
            "tokens": TextVectorizer(sequence_length=4),
            "ngrams": TextVectorizer(ngram_range=(1, 2), sequence_length=7),
        }
    )
    inputs = features.fit_transform(TEXTS)
    assert isinstance(inputs, dict)
    assert set(inputs) == {"tokens", "ngrams"}
    assert inputs["tokens"].shape == (len(TEXTS), 4)
    assert inputs["ngrams"].shape == (len(TEXTS), 7)
    assert inputs["tokens"].dtype == inputs["ngrams"].dtype == np.int32
    assert "free now" not in features.vectorizers["tokens"].vocabulary_
    assert "free cash" in features.vectorizers["ngrams"].vocabulary_


def test_text_features_fit_accepts_a_generator():
    features = TextFeatures({"a": TextVectorizer(), "b": TextVectorizer(output="counts")})
    features.fit(text for text in TEXTS)
    assert hasattr(features.vectorizers["a"], "vocabulary_")
    assert hasattr(features.vectorizers["b"], "vocabulary_")


def test_get_params_and_set_params():
    vectorizer = TextVectorizer(output="counts", max_tokens=50)
    params = vectorizer.get_params()
    assert params == {
        "output": "counts",
        "max_tokens": 50,
        "sequence_length": 0,
        "min_sequence_length": 1,
        "ngram_range": (1, 1),
        "lowercase": True,
        "stop_words": None,
        "binary": False,
        "log_count_ratios": False,
        "alpha": 1.0,
    }
    assert vectorizer.set_params(max_tokens=2) is vectorizer
    assert vectorizer.fit(TEXTS).vocabulary_size == 2


def test_clone_is_unfitted_with_the_same_params():
    vectorizer = TextVectorizer(output="tfidf", max_tokens=7, ngram_range=(1, 2)).fit(TEXTS)
    copy = base.clone(vectorizer)
    assert copy.get_params() == vectorizer.get_params()
    assert not hasattr(copy, "vocabulary_")


def test_clone_of_text_features_clones_the_vectorizers():
    features = TextFeatures({"tokens": TextVectorizer(max_tokens=9)}).fit(TEXTS)
    copy = base.clone(features)
    assert copy.vectorizers["tokens"] is not features.vectorizers["tokens"]
    assert copy.vectorizers["tokens"].max_tokens == 9
    assert not hasattr(copy.vectorizers["tokens"], "vocabulary_")


def test_works_inside_a_pipeline():
    texts = ["free prize now", "win cash now", "free entry win", "see you at noon", "lunch at home", "see you soon"] * 3
    labels = ["spam", "spam", "spam", "ham", "ham", "ham"] * 3
    model = pipeline.Pipeline(
        [("vectorize", TextVectorizer(output="tfidf")), ("classify", LogisticRegression())]
    )
    model.fit(texts, labels)
    assert model.predict(["free cash prize", "see you at home"]).tolist() == ["spam", "ham"]
    model.set_params(vectorize__max_tokens=3)
    model.fit(texts, labels)
    assert model.named_steps["vectorize"].vocabulary_size == 3
    assert model.named_steps["classify"].coef_.shape == (1, 3)
    copy = base.clone(model)
    assert copy.get_params()["vectorize__max_tokens"] == 3


def test_sequence_idf_matches_scikit_learns_tfidf_vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["free prize now", "call now for a free prize", "see you at noon", "noon it is"]
    vectorizer = TextVectorizer(output="sequences", ngram_range=(1, 2)).fit(texts)
    reference = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b", ngram_range=(1, 2)).fit(texts)
    for token, index in vectorizer.vocabulary_.items():
        assert vectorizer.idf_[index] == pytest.approx(reference.idf_[reference.vocabulary_[token]], rel=1e-6)
    assert vectorizer.idf_[0] == 0.0 and vectorizer.idf_.shape == (vectorizer.vocabulary_size,)


# Binary n-gram sequences and naive-Bayes log-count ratios.


def test_binary_sequences_hold_each_distinct_id_once_in_order_of_first_appearance():
    vectorizer = TextVectorizer(binary=True, sequence_length=6).fit(TEXTS)
    vocabulary = vectorizer.vocabulary_
    ids = vectorizer.transform(["now free now zebra free okapi"])[0]
    assert ids.tolist() == [vocabulary["now"], vocabulary["free"], UNKNOWN_ID, PADDING_ID, PADDING_ID, PADDING_ID]


def test_binary_sequence_length_counts_distinct_tokens():
    vectorizer = TextVectorizer(binary=True).fit(["a a a a b"] * 20)
    assert vectorizer.sequence_length_ == 2
    assert TextVectorizer().fit(["a a a a b"] * 20).sequence_length_ == 5


def log_count_ratios_by_hand(texts, labels, vocabulary, alpha=1.0):
    """The ratios of Wang and Manning (2012), computed the slow, obvious way."""
    from sklearn.feature_extraction.text import CountVectorizer

    analyzer = CountVectorizer(token_pattern=r"(?u)\b\w+\b", ngram_range=(1, 2)).build_analyzer()
    classes = sorted(set(labels))
    ratios = np.zeros((len(vocabulary) + 2, len(classes)))
    for column, label in enumerate(classes):
        p = np.full(len(vocabulary), alpha)
        q = np.full(len(vocabulary), alpha)
        for text, text_label in zip(texts, labels):
            for token in set(analyzer(text)):
                if token in vocabulary:
                    (p if text_label == label else q)[vocabulary[token] - 2] += 1
        ratios[2:, column] = np.log(p / p.sum()) - np.log(q / q.sum())
    return ratios


@pytest.mark.parametrize("labels", [
    ["spam", "spam", "ham", "spam", "ham"],
    ["a", "b", "c", "a", "c"],
], ids=["two classes", "three classes"])  # fmt: skip
def test_log_count_ratios_match_the_definition(labels):
    vectorizer = TextVectorizer(ngram_range=(1, 2), binary=True, log_count_ratios=True).fit(TEXTS, labels)
    expected = log_count_ratios_by_hand(TEXTS, labels, vectorizer.vocabulary_)
    assert vectorizer.log_count_ratios_.shape == (vectorizer.vocabulary_size, len(set(labels)))
    assert vectorizer.log_count_ratios_.dtype == np.float32
    np.testing.assert_allclose(vectorizer.log_count_ratios_, expected, rtol=1e-5, atol=1e-6)
    assert vectorizer.classes_.tolist() == sorted(set(labels))
    assert np.all(vectorizer.log_count_ratios_[[PADDING_ID, UNKNOWN_ID]] == 0.0)


def test_log_count_ratios_point_to_the_class_a_word_occurs_in():
    vectorizer = TextVectorizer(log_count_ratios=True).fit(TEXTS, ["spam", "spam", "ham", "spam", "ham"])
    ham, spam = vectorizer.log_count_ratios_.T
    free, you = vectorizer.vocabulary_["free"], vectorizer.vocabulary_["you"]
    assert spam[free] > 0 > ham[free]
    assert ham[you] > 0 > spam[you]
    # One class against the other: the two columns are opposite.
    np.testing.assert_allclose(ham, -spam, atol=1e-6)


def test_log_count_ratios_need_labels():
    with pytest.raises(ValueError, match="needs the labels"):
        TextVectorizer(log_count_ratios=True).fit(TEXTS)
    with pytest.raises(ValueError, match="one label per text"):
        TextVectorizer(log_count_ratios=True).fit(TEXTS, ["spam"])


def test_text_features_pass_the_labels_to_each_vectorizer():
    features = TextFeatures({
        "tokens": TextVectorizer(),
        "ngrams": TextVectorizer(ngram_range=(1, 2), binary=True, log_count_ratios=True),
    }).fit(TEXTS, ["spam", "spam", "ham", "spam", "ham"])  # fmt: skip
    assert features.vectorizers["ngrams"].log_count_ratios_.shape[1] == 2
    assert not hasattr(features.vectorizers["tokens"], "log_count_ratios_")
    description = features.describe()
    words, ngrams = description.split("; ")
    assert words.startswith(f"{len(features.vectorizers['tokens'].vocabulary_)} words, ")
    assert ngrams.endswith("1-2-grams, sequences of up to 7, weighted by their naive-Bayes log-count ratios for 2 classes")


def test_a_vectorizer_pickled_without_the_binary_options_still_transforms(tmp_path):
    vectorizer = TextVectorizer(sequence_length=4).fit(TEXTS)
    for name in ("binary", "log_count_ratios", "alpha"):
        del vectorizer.__dict__[name]
    joblib.dump(vectorizer, tmp_path / "old.joblib")
    loaded = joblib.load(tmp_path / "old.joblib")
    assert loaded.binary is False and loaded.log_count_ratios is False
    np.testing.assert_array_equal(loaded.transform(TEXTS), TextVectorizer(sequence_length=4).fit(TEXTS).transform(TEXTS))
