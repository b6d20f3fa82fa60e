"""Evaluation of a trained model against scikit-learn's metrics, and what it writes."""

import json

import numpy as np
import pytest
from sklearn import metrics as sklearn_metrics

from kerastrain import evaluation, run_folder, tf_data
from kerastrain.backend import keras
from kerastrain.models import build_mlp


@pytest.fixture(scope="module")
def trained_model_and_data():
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 4)).astype("float32")
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype("int32")
    model = build_mlp(4, 2, hidden_units=(8,))
    model.compile(
        optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(features, labels, epochs=5, batch_size=16, verbose=0)
    return model, features, labels


def test_evaluate_matches_sklearn(trained_model_and_data):
    model, features, labels = trained_model_and_data
    dataset = tf_data.make_dataset(features, labels, batch_size=16)
    result = evaluation.evaluate(model, dataset, labels, ["negative", "positive"])
    predicted = np.argmax(model.predict(features, verbose=0), axis=1)
    assert result["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(labels, predicted))
    assert result["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(labels, predicted, average="macro"))
    assert result["confusion_matrix"] == sklearn_metrics.confusion_matrix(labels, predicted).tolist()
    assert result["accuracy"] > 0.7
    keras_results = model.evaluate(features, labels, verbose=0, return_dict=True)
    assert result["accuracy"] == pytest.approx(keras_results["accuracy"], abs=1e-6)
    assert result["loss"] == pytest.approx(keras_results["loss"], rel=1e-4)
    assert "negative" in result["report"] and "positive" in result["report"]
    assert json.loads(json.dumps({key: value for key, value in result.items()})) == result


def test_evaluate_counts_classes_that_are_never_predicted(trained_model_and_data):
    model, features, labels = trained_model_and_data
    dataset = tf_data.make_dataset(features, labels, batch_size=16)
    result = evaluation.evaluate(model, dataset, labels, ["negative", "positive", "unseen"])
    matrix = np.asarray(result["confusion_matrix"])
    assert matrix.shape == (3, 3)
    assert matrix.sum() == len(labels)
    assert matrix[2].sum() == 0 and matrix[:, 2].sum() == 0
    assert "unseen" in result["report"]


def test_write_evaluation(tmp_path, trained_model_and_data):
    model, features, labels = trained_model_and_data
    dataset = tf_data.make_dataset(features, labels, batch_size=16)
    result = evaluation.evaluate(model, dataset, labels, ["negative", "positive"])
    evaluation.write_evaluation(result, ["negative", "positive"], run_folder.RunFolder(tmp_path))
    assert (tmp_path / "classification_report.txt").read_text() == result["report"]
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["classification_report.txt", "confusion_matrix.png"]
