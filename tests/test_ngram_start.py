"""The n-gram branch's start from NB-weighted logistic regression, and ExampleDropout."""

import joblib
import numpy as np
import pytest
from scipy import sparse
from sklearn import linear_model

from kerastrain import ngram_start
from kerastrain.backend import keras
from kerastrain.config import TextCNNConfig
from kerastrain.data import Examples
from kerastrain.models import build_textcnn
from kerastrain.models.layers import ExampleDropout
from kerastrain.recipes import textcnn
from kerastrain.text_vectorization import TextVectorizer

TOPICS = {
    "sport": "goal match team score win league coach",
    "money": "bank loan price market stock cash fund",
    "food": "bread cheese soup cook taste dinner salt",
}


def topic_texts(count, seed=0, classes=("sport", "money", "food")):
    """Short texts mostly of their class's words, with some words of the others."""
    rng = np.random.default_rng(seed)
    every_word = " ".join(TOPICS.values()).split()
    texts, labels = [], []
    for index in range(count):
        label = classes[index % len(classes)]
        words = list(rng.choice(TOPICS[label].split(), size=3)) + list(rng.choice(every_word, size=3))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.asarray(labels)


def nb_lr_decision_functions(ngram_ids, labels, ratios):
    """NB-LR as the benchmark's nb_lr contender computes it, on the vectorizer's features."""
    features = ngram_start.binary_features(ngram_ids, len(ratios))
    positives = [1] if ratios.shape[1] == 2 else range(ratios.shape[1])
    models, scores = [], []
    for positive in positives:
        scale = sparse.diags(ratios[:, positive].astype(np.float64))
        model = linear_model.LogisticRegression(C=1.0, max_iter=2000).fit(features @ scale, labels == positive)
        models.append(model)
        scores.append(model.decision_function(features @ scale))
    return models, np.stack(scores, axis=1), features


def fitted_ngrams(texts, labels):
    vectorizer = TextVectorizer(ngram_range=(1, 2), binary=True, log_count_ratios=True).fit(texts, labels)
    label_ids = np.searchsorted(vectorizer.classes_, labels)
    return vectorizer, vectorizer.transform(texts), label_ids


def test_binary_features_hold_each_id_once_without_padding():
    features = ngram_start.binary_features(np.asarray([[3, 2, 3, 0], [0, 0, 0, 0]]), 5).toarray()
    np.testing.assert_array_equal(features, [[0, 0, 1, 1, 0], [0, 0, 0, 0, 0]])


def test_more_than_two_classes_start_with_one_against_the_rest_decisions():
    texts, labels = topic_texts(90)
    vectorizer, ids, label_ids = fitted_ngrams(texts, labels)
    start = ngram_start.fit_logistic_regression(ids, label_ids, vectorizer.log_count_ratios_)
    _, expected, _ = nb_lr_decision_functions(ids, label_ids, vectorizer.log_count_ratios_)
    logits = start.logits(ids, vectorizer.log_count_ratios_)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    assert start.weights.shape == vectorizer.log_count_ratios_.shape and start.weights.dtype == np.float32
    assert np.mean(logits.argmax(axis=1) == label_ids) > 0.9
    assert start.l2 == pytest.approx(0.5 / len(texts))


def test_two_classes_start_with_the_logistic_regressions_probabilities():
    texts, labels = topic_texts(60, classes=("sport", "money"))
    vectorizer, ids, label_ids = fitted_ngrams(texts, labels)
    start = ngram_start.fit_logistic_regression(ids, label_ids, vectorizer.log_count_ratios_)
    (model,), _, features = nb_lr_decision_functions(ids, label_ids, vectorizer.log_count_ratios_)
    logits = start.logits(ids, vectorizer.log_count_ratios_)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    scale = sparse.diags(vectorizer.log_count_ratios_[:, 1].astype(np.float64))
    np.testing.assert_allclose(softmax[:, 1], model.predict_proba(features @ scale)[:, 1], rtol=1e-4)
    np.testing.assert_allclose(logits[:, 0], -logits[:, 1], rtol=1e-5)  # half of the score each way
    assert start.l2 == pytest.approx(1.0 / len(texts))


@pytest.mark.parametrize("classes", [("sport", "money"), ("sport", "money", "food")])
def test_a_start_fitted_for_an_l2_penalty_keeps_it_and_matches_that_c(classes):
    """The refit's start: the first training's penalty, on more examples, is a smaller C."""
    texts, labels = topic_texts(90, classes=classes)
    examples = Examples(texts, labels, "topics")
    features = textcnn.fit_preprocessor(TextCNNConfig(ngram_features=500, ngram_max=2), examples)
    first = ngram_start.fit_for_features(features, examples)
    l2 = first.l2 * 1.25
    kept = ngram_start.fit_for_features(features, examples, l2=l2)
    assert kept.l2 == l2
    matching_c = ngram_start.fit_for_features(features, examples, c=1 / 1.25)
    np.testing.assert_allclose(kept.weights, matching_c.weights, rtol=1e-5, atol=1e-6)
    assert not np.allclose(kept.weights, first.weights, atol=1e-3)


def test_the_textcnn_branch_starts_with_the_fitted_logits(float32_policy):
    texts, labels = topic_texts(90)
    vectorizer, ids, label_ids = fitted_ngrams(texts, labels)
    start = ngram_start.fit_logistic_regression(ids, label_ids, vectorizer.log_count_ratios_)
    model = build_textcnn(
        30, 8, 3, embedding_dim=4, filters=2, ngram_vocabulary_size=vectorizer.vocabulary_size,
        ngram_weights=vectorizer.log_count_ratios_, ngram_initial_weights=start.weights,
        initial_biases=start.biases, ngram_l2=start.l2,
    )  # fmt: skip
    bag = keras.Model(model.get_layer("ngrams").output, model.get_layer("ngram_bag").output)
    kernel, bias = model.get_layer("logits").get_weights()
    np.testing.assert_allclose(
        bag(ids).numpy() + bias, start.logits(ids, vectorizer.log_count_ratios_), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_array_equal(kernel[-3:], np.eye(3))
    assert len(model.losses) == 1 and float(model.losses[0]) > 0  # the logistic regression's penalty


def test_initial_weights_of_the_wrong_shape_raise(float32_policy):
    ratios = np.ones((20, 3), np.float32)
    with pytest.raises(ValueError, match="ngram_initial_weights"):
        build_textcnn(30, 8, 3, ngram_vocabulary_size=20, ngram_weights=ratios, ngram_initial_weights=np.ones((20, 2)))


def test_recipe_model_predicts_like_nb_lr_before_training(float32_policy, tmp_path):
    texts, labels = topic_texts(120, seed=1)
    config = TextCNNConfig(embedding_dim=4, filters=2, output_dir=str(tmp_path / "run"))
    features = textcnn.fit_preprocessor(config, Examples(texts, labels, "topics"))
    assert "starting from NB-weighted logistic regression" in features.describe()
    model = textcnn.build_model(config, features, 3)
    # Without the convolutions' share of the logits, the model is NB-LR itself.
    classifier = model.get_layer("logits")
    kernel, bias = classifier.get_weights()
    kernel[:-3] = 0.0
    classifier.set_weights([kernel, bias])
    test_texts, _ = topic_texts(30, seed=2)
    inputs = features.model_inputs(test_texts)
    vectorizer = features.vectorizers["ngrams"]
    _, decisions, _ = nb_lr_decision_functions(*fitted_ngrams(texts, labels)[1:], vectorizer.log_count_ratios_)
    logits = features.ngram_start_.logits(inputs["ngrams"], vectorizer.log_count_ratios_)
    probabilities = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(probabilities, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), atol=1e-5)
    fitted = features.ngram_start_.logits(fitted_ngrams(texts, labels)[1], vectorizer.log_count_ratios_)
    np.testing.assert_array_equal(fitted.argmax(axis=1), decisions.argmax(axis=1))
    # Pickled with the features, so a resumed run rebuilds the same start.
    joblib.dump(features, tmp_path / "features.joblib")
    reloaded = joblib.load(tmp_path / "features.joblib")
    np.testing.assert_array_equal(reloaded.ngram_start_.weights, features.ngram_start_.weights)


@pytest.mark.parametrize("flags", [{"ngram_start": "naive_bayes"}, {"ngram_weighting": "idf"}, {"ngram_features": 0}])
def test_other_branches_fit_no_logistic_regression(flags, tmp_path):
    texts, labels = topic_texts(60)
    config = TextCNNConfig(output_dir=str(tmp_path / "run"), **flags)
    features = textcnn.fit_preprocessor(config, Examples(texts, labels, "topics"))
    assert getattr(features, "ngram_start_", None) is None
    assert "logistic regression" not in features.describe()


# ExampleDropout.


def test_example_dropout_zeroes_whole_examples_in_training_only(float32_policy):
    layer = ExampleDropout(0.5)
    inputs = np.arange(1, 4001, dtype=np.float32).reshape(2000, 2)
    dropped = layer(inputs, training=True).numpy()
    zeroed = np.all(dropped == 0, axis=1)
    np.testing.assert_array_equal(dropped[~zeroed], inputs[~zeroed])  # the rest as they were, not rescaled
    assert 0.4 < zeroed.mean() < 0.6
    np.testing.assert_array_equal(layer(inputs, training=False).numpy(), inputs)
    np.testing.assert_array_equal(layer(inputs).numpy(), inputs)


def test_example_dropout_refuses_a_rate_of_one():
    with pytest.raises(ValueError, match="rate in"):
        ExampleDropout(1.0)


def test_textcnn_with_example_dropout_saves_and_reloads(float32_policy, tmp_path):
    ratios = np.random.default_rng(1).normal(size=(40, 2)).astype("float32")
    model = build_textcnn(
        30, 8, 2, embedding_dim=4, filters=2, ngram_vocabulary_size=40, ngram_weights=ratios, ngram_example_dropout=0.5
    )
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert reloaded.get_layer("ngram_example_dropout").rate == 0.5
    inputs = {"tokens": np.ones((2, 8), "int32"), "ngrams": np.asarray([[3, 4, 0], [5, 0, 0]], "int32")}
    np.testing.assert_allclose(reloaded(inputs).numpy(), model(inputs).numpy(), rtol=1e-6)
