"""The figures: training history and confusion matrix."""

import warnings

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from conftest import HISTORY_ROWS
from kerastrain import plots


def test_plot_history_returns_a_figure():
    figure = plots.plot_history(pd.DataFrame(HISTORY_ROWS))
    assert isinstance(figure, Figure)
    loss_axis, accuracy_axis = figure.axes
    assert loss_axis.get_title() == "loss"
    assert accuracy_axis.get_title() == "accuracy"
    assert [line.get_label() for line in loss_axis.get_lines()] == ["train", "validation"]
    np.testing.assert_array_equal(loss_axis.get_lines()[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(loss_axis.get_lines()[1].get_ydata(), [1.1, 0.8, 0.7])


def test_plot_history_skips_missing_columns():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib: an empty axis has no legend entries.
        figure = plots.plot_history(pd.DataFrame({"epoch": [0, 1], "loss": [1.0, 0.5]}))
    loss_axis, accuracy_axis = figure.axes
    assert [line.get_label() for line in loss_axis.get_lines()] == ["train"]
    assert len(accuracy_axis.get_lines()) == 0


def tick_texts(labels):
    return [label.get_text() for label in labels]


def test_plot_confusion_matrix_has_class_names_on_the_ticks():
    figure = plots.plot_confusion_matrix([[5, 1, 0], [2, 7, 1], [0, 0, 9]], ["ham", "spam", "eggs"])
    assert isinstance(figure, Figure)
    axis = figure.axes[0]
    assert tick_texts(axis.get_xticklabels()) == ["ham", "spam", "eggs"]
    assert tick_texts(axis.get_yticklabels()) == ["ham", "spam", "eggs"]
    assert axis.get_xlabel() == "predicted"
    assert axis.get_ylabel() == "true"
    annotations = [text.get_text() for text in axis.texts]
    assert annotations == ["5", "1", "0", "2", "7", "1", "0", "0", "9"]


def test_plot_confusion_matrix_normalized():
    figure = plots.plot_confusion_matrix([[3, 1], [0, 0]], ["a", "b"], normalize=True)
    annotations = [text.get_text() for text in figure.axes[0].texts]
    assert annotations == ["0.75", "0.25", "0.00", "0.00"]


def test_plot_confusion_matrix_with_many_classes_has_no_annotations():
    names = [f"class{index}" for index in range(26)]
    figure = plots.plot_confusion_matrix(np.eye(26, dtype=int), names)
    assert len(figure.axes[0].texts) == 0
    assert set(tick_texts(figure.axes[0].get_xticklabels())) <= set(names)
