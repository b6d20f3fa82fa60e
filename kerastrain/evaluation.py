"""Test-set evaluation: metrics, a classification report and a confusion matrix."""

import numpy as np
from sklearn import metrics as sklearn_metrics

from kerastrain import plots


def evaluate(model, dataset, label_ids, class_names):
    """Evaluates a classifier on a dataset in a fixed order, from its predictions.

    The metrics come from `predict` on this process, not `Model.evaluate`, so
    they are exact under every strategy (a parameter-server `evaluate` counts
    steps, not examples). The loss is the test split's mean cross-entropy,
    without regularization terms.

    Args:
        model: a `keras.Model` whose output is class probabilities.
        dataset: a `tf.data.Dataset` of `(inputs, labels)`, not shuffled.
        label_ids: the dataset's true class ids, in dataset order.
        class_names: names of the class ids.

    Returns:
        A dict with `accuracy`, `loss`, `macro_f1`, the `report` text and the
        `confusion_matrix` (a nested list).
    """
    return score_probabilities(model.predict(dataset, verbose=0), label_ids, class_names)


def score_probabilities(probabilities, label_ids, class_names):
    """Classification metrics of predicted class probabilities.

    Args:
        probabilities: an array `(examples, classes)` of class probabilities.
        label_ids: the true class ids, one per row of `probabilities`.
        class_names: names of the class ids.

    Returns:
        The dict that `evaluate` returns.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    label_ids = np.asarray(label_ids)
    predicted = np.argmax(probabilities, axis=1)
    # Clipped as Keras' cross-entropy clips, so that one confident mistake
    # cannot make the mean infinite.
    true_probabilities = np.clip(probabilities[np.arange(len(label_ids)), label_ids], 1e-7, 1.0)
    classes = list(range(len(class_names)))
    report = sklearn_metrics.classification_report(
        label_ids, predicted, labels=classes, target_names=list(class_names), digits=4, zero_division=0
    )
    matrix = sklearn_metrics.confusion_matrix(label_ids, predicted, labels=classes)
    return {
        "accuracy": float(np.mean(predicted == label_ids)),
        "loss": float(-np.mean(np.log(true_probabilities))),
        "macro_f1": float(
            sklearn_metrics.f1_score(label_ids, predicted, labels=classes, average="macro", zero_division=0)
        ),
        "report": report,
        "confusion_matrix": matrix.tolist(),
    }


def write_evaluation(evaluation, class_names, run):
    """Writes `classification_report.txt` and `confusion_matrix.png` into the run folder."""
    run.write_text("classification_report.txt", evaluation["report"])
    figure = plots.plot_confusion_matrix(evaluation["confusion_matrix"], class_names)
    run.save_figure("confusion_matrix.png", figure)
