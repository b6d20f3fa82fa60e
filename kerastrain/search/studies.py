"""Studies: one recipe trained under several named config variants, compared.

A study takes a base config and a dict of variants, each a name and the fields
it changes. Every variant trains through the pipeline into its own run folder,
and the study gathers their `history.csv` and `metrics.json` into overlaid
curves and a table of final metrics.

Example:

```python
import kerastrain
from kerastrain.search import studies

base = kerastrain.MLPConfig(epochs=20, verbose=0)
results = studies.run_variants(
    "mlp",
    base,
    {"sgd": {"optimizer": "sgd", "learning_rate": 0.05}, "adam": {"optimizer": "adam"}},
    output_dir="runs/optimizers",
)
studies.plot_comparison(results, title="Optimizers")  # a matplotlib Figure
studies.final_metrics_table(results)  # a pandas DataFrame
```
"""

import dataclasses
import os
import re

import pandas as pd
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


# Curves a study draws by default, with their axis labels.
VALIDATION_CURVES = {"val_loss": "validation loss", "val_accuracy": "validation accuracy"}


@dataclasses.dataclass
class VariantResult:
    """One trained variant of a study.

    Attributes:
        name: the variant's name.
        config: the resolved config it trained with.
        metrics: the run's `metrics.json`.
        history: the run's `history.csv`, one row per epoch.
        path: the run folder.
    """

    name: str
    config: object
    metrics: dict
    history: pd.DataFrame
    path: str

    def final(self, column):
        """The value of a history column at the last epoch (NaN if it is missing)."""
        if column not in self.history or self.history.empty:
            return float("nan")
        return float(self.history[column].iloc[-1])


# Customary starting learning rates of each optimizer, not tuned to any problem:
# one rate for all would leave plain SGD barely moving, or Adam unstable.
OPTIMIZER_LEARNING_RATES = {
    "sgd": 0.05,
    "momentum": 0.01,
    "nesterov": 0.01,
    "adagrad": 0.05,
    "rmsprop": 0.001,
    "adam": 0.001,
}


def optimizer_variants(names=None):
    """Variants that train with each named optimizer at its customary learning rate.

    Args:
        names: optimizer names (keys of `OPTIMIZER_LEARNING_RATES`). Defaults
            to `None` (all six).

    Returns:
        A dict from each optimizer's name to its config fields.

    Example:

    ```python
    optimizer_variants(["sgd", "adam"])
    # {"sgd": {"optimizer": "sgd", "learning_rate": 0.05},
    #  "adam": {"optimizer": "adam", "learning_rate": 0.001}}
    ```
    """
    names = list(OPTIMIZER_LEARNING_RATES) if names is None else names
    return {name: {"optimizer": name, "learning_rate": OPTIMIZER_LEARNING_RATES[name]} for name in names}


def with_and_without(variants, label, overrides):
    """Each variant as it is and, after it, changed by `overrides`.

    Args:
        variants: a dict from variant name to config fields.
        label: what the change is called; the changed variant is named
            `"NAME + LABEL"`.
        overrides: the config fields of the change.

    Returns:
        A dict of twice as many variants.

    Example:

    ```python
    with_and_without({"adam": {"optimizer": "adam"}}, "dropout", {"dropout": 0.2})
    # {"adam": {"optimizer": "adam"},
    #  "adam + dropout": {"optimizer": "adam", "dropout": 0.2}}
    ```
    """
    paired = {}
    for name, fields in variants.items():
        paired[name] = dict(fields)
        paired[f"{name} + {label}"] = {**fields, **overrides}
    return paired


def folder_name(name):
    """A variant's run-folder name: its name in lowercase, runs of other characters as `-`.

    Example:

    ```python
    folder_name("Adam + decay")  # "adam-decay"
    ```
    """
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-") or "variant"


def run_variants(recipe, base_config, variants, output_dir):
    """Trains `base_config` changed by each variant, each in its own run folder.

    The run folder of a variant is `output_dir/folder_name(name)`. As for any
    run, a folder that already holds the variant's finished run is read instead
    of retrained, so comparisons that share a variant (same name, same
    settings) train it once.

    Args:
        recipe: the `Recipe` to train, or its name, such as `"mlp"`.
        base_config: the validated config every variant starts from.
        variants: a dict from a variant's name to a dict of the config fields it
            changes (`{}` for the base config itself).
        output_dir: the folder that holds the variants' run folders.

    Returns:
        A dict from each variant's name to its `VariantResult`, in the order of
        `variants`.

    Raises:
        UsageError: if a variant changes a field that does not exist or sets a
            value out of range, or if two variants share a folder name.
    """
    from kerastrain import pipeline
    from kerastrain.errors import UsageError

    if isinstance(recipe, str):
        from kerastrain.recipes import find_recipe

        recipe = find_recipe(recipe)
    folders = {}
    for name in variants:
        folder = folder_name(name)
        if folder in folders:
            raise UsageError(
                f"Variants {folders[folder]!r} and {name!r} would share the run folder {folder!r}. "
                "Give them names that differ in letters or digits."
            )
        folders[folder] = name
    configs = {}
    for name, overrides in variants.items():
        unknown = sorted(set(overrides) - {item.name for item in dataclasses.fields(base_config)})
        if unknown:
            raise UsageError(
                f"Variant {name!r} changes {unknown[0]!r}, which is not a field of "
                f"{type(base_config).__name__}. Use the config's field names."
            )
        path = os.path.join(os.fspath(output_dir), folder_name(name))
        config = dataclasses.replace(base_config, **overrides, output_dir=path)
        config.validate()
        configs[name] = config
    from kerastrain.backend import keras

    results = {}
    for name, config in configs.items():
        # Each run builds its own model; freeing the previous one keeps a long
        # study's memory flat and its layer names the same as a lone run's.
        keras.backend.clear_session()
        run = pipeline.train(recipe, config)
        results[name] = VariantResult(name, config, run.metrics, run.history, run.path)
    return results


def plot_comparisons(comparisons, curves=None):
    """Overlaid curves of several comparisons: one row each, one column per curve.

    Args:
        comparisons: a dict from a comparison's title to its results (a dict
            from variant name to `VariantResult`, as `run_variants` returns).
        curves: a dict from a history column to its axis label. Defaults to
            `VALIDATION_CURVES` (validation loss and accuracy).

    Returns:
        A `matplotlib.figure.Figure`.
    """
    curves = curves or VALIDATION_CURVES
    rows, columns = len(comparisons), len(curves)
    figure = Figure(figsize=(5.2 * columns, 3.6 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    for row, (title, results) in zip(axes, comparisons.items()):
        for axis, (column, label) in zip(row, curves.items()):
            for result in results.values():
                if column in result.history and not result.history.empty:
                    epochs = result.history["epoch"].to_numpy()
                    axis.plot(epochs, result.history[column].to_numpy(), marker="o", markersize=3, label=result.name)
            axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
            axis.set_xlabel("epoch")
            axis.set_ylabel(label)
            axis.set_title(f"{title}: {label}")
            axis.grid(alpha=0.3)
            if axis.lines:
                axis.legend(fontsize="small")
    return figure


def plot_comparison(results, title="", curves=None):
    """Overlaid curves of one comparison, one column per curve.

    Args:
        results: a dict from variant name to `VariantResult`.
        title: the comparison's title. Defaults to `""`.
        curves: as for `plot_comparisons`. Defaults to `None`.

    Returns:
        A `matplotlib.figure.Figure`.
    """
    return plot_comparisons({title: results}, curves)


def final_metrics_table(results):
    """A table of each variant's final and best metrics.

    Args:
        results: a dict from variant name to `VariantResult`.

    Returns:
        A `pandas.DataFrame` indexed by variant name, with the epochs trained,
        the last epoch's validation loss and accuracy, the best validation
        accuracy, the test accuracy (of the best weights) and the training
        throughput in examples per second.
    """
    rows = []
    for result in results.values():
        rows.append(
            {
                "variant": result.name,
                "epochs": result.metrics["epochs"],
                "final_val_loss": result.final("val_loss"),
                "final_val_accuracy": result.final("val_accuracy"),
                "best_val_accuracy": result.metrics["validation"]["best_accuracy"],
                "test_accuracy": result.metrics["test"]["accuracy"],
                "examples_per_second": result.metrics["examples_per_second"],
            }
        )
    return pd.DataFrame(rows).set_index("variant")
