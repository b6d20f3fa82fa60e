"""Figures of a run (history, confusion matrix, learning rate, throughput) and of runs compared.

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
            `loss`, `accuracy`, `val_loss`, `val_accuracy` (as `history.csv` holds
            them, epochs from 1); missing columns are skipped.

    Returns:
        A `matplotlib.figure.Figure`.
    """
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    epochs = history["epoch"].to_numpy()
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


def plot_learning_rate(rates, steps_per_epoch):
    """The learning rate at every training step, with epoch boundaries.

    Args:
        rates: the learning rate before each step, one value per step.
        steps_per_epoch: steps in one epoch, for the epoch marks.

    Returns:
        A `matplotlib.figure.Figure`.
    """
    rates = np.asarray(rates, dtype=np.float64)
    figure = Figure(figsize=(6, 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    axis.plot(np.arange(len(rates)), rates)
    for boundary in range(steps_per_epoch, len(rates), steps_per_epoch):
        axis.axvline(boundary, color="grey", alpha=0.3, linewidth=0.8)
    axis.set_xlabel(f"training step ({steps_per_epoch} per epoch; grey lines: epochs)")
    axis.set_ylabel("learning rate")
    axis.set_title("learning-rate schedule")
    axis.set_ylim(bottom=0, top=max(rates.max(), 1e-12) * 1.1)
    axis.grid(alpha=0.3)
    return figure


def plot_throughput(history, workers=None):
    """Training examples per second of each epoch, and of each worker in a cluster run.

    Args:
        history: a `pandas.DataFrame` with `epoch` and `examples_per_second`.
        workers: a `pandas.DataFrame` with `epoch`, `worker` and
            `examples_per_second`, one row per epoch and worker (as
            `RunFolder.read_workers` gives it), drawn as one line per worker;
            `None` or empty for none. Defaults to `None`.

    Returns:
        A `matplotlib.figure.Figure`.
    """
    figure = Figure(figsize=(6, 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    has_workers = workers is not None and len(workers) > 0
    epochs = history["epoch"].to_numpy()
    axis.bar(epochs, history["examples_per_second"].to_numpy(), color="tab:green", label="job" if has_workers else None)
    if has_workers:
        for worker, rows in workers.groupby("worker"):
            rates = rows["examples_per_second"].to_numpy(dtype=float)
            axis.plot(rows["epoch"].to_numpy(), rates, marker="o", label=f"worker {worker}")
        axis.legend()
    axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    axis.set_xlabel("epoch")
    axis.set_ylabel("examples / s")
    axis.set_title("training throughput")
    axis.grid(alpha=0.3, axis="y")
    return figure


def plot_run_comparison(histories):
    """Validation loss and accuracy per epoch of several runs, one line each.

    Args:
        histories: a dict from a run's label to its history `DataFrame` (with
            `epoch`, `val_loss` and `val_accuracy`; missing columns are skipped).

    Returns:
        A `matplotlib.figure.Figure`.
    """
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    for axis, metric in zip(axes, ("val_loss", "val_accuracy")):
        for label, history in histories.items():
            if metric in history and len(history):
                axis.plot(history["epoch"].to_numpy(), history[metric].to_numpy(), marker="o", label=label)
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric.replace("_", " "))
        axis.set_title(metric.replace("val_", "validation "))
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend()
    return figure
