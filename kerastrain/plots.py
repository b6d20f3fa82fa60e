"""Figures of a run: training history and confusion matrix.

They are built on `matplotlib.figure.Figure` rather than `pyplot`, so they work
the same in scripts, on servers without a display and in notebooks (where
returning the figure displays it).
"""

import numpy as np
import seaborn
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_history(history):
    """Loss and accuracy per epoch, training and validation, side by side.

    Args:
        history: a `pandas.DataFrame` with an `epoch` column and the metrics
            `loss`, `accuracy`, `val_loss`, `val_accuracy` (as `CSVLogger`
            writes them); missing columns are skipped.

    Returns:
        A `matplotlib.figure.Figure`.
    """
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    epochs = history["epoch"].to_numpy() + 1
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for prefix, label in (("", "train"), ("val_", "validation")):
            column = prefix + metric
            if column in history:
                axis.plot(epochs, history[column].to_numpy(), marker="o", label=label)
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend()
    return figure


def plot_confusion_matrix(matrix, class_names, normalize=False):
    """A seaborn heatmap of a confusion matrix, class names on both axes.

    Args:
        matrix: a square array, rows the true and columns the predicted classes.
        class_names: the names of the classes, in matrix order.
        normalize: show each row as fractions of its true class. Defaults to
            `False` (counts).

    Returns:
        A `matplotlib.figure.Figure`.
    """
    matrix = np.asarray(matrix)
    size = max(4.0, 0.6 * len(class_names) + 2.0)
    figure = Figure(figsize=(size + 1.0, size), layout="constrained")
    # A figure without a canvas is redrawn for each tick label that seaborn
    # checks for overlap: 6 s instead of 0.5 s for 60 classes.
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        values, number_format = matrix / np.maximum(totals, 1), ".2f"
    else:
        values, number_format = matrix, "d"
    seaborn.heatmap(
        values,
        annot=len(class_names) <= 25,
        fmt=number_format,
        cmap="Blues",
        xticklabels=class_names,
        yticklabels=class_names,
        square=True,
        ax=axis,
    )
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title("confusion matrix")
    return figure
