"""`kerastrain.train`: the Python entry point, for notebooks and scripts.

```python
import kerastrain

run = kerastrain.train("textcnn", data="sms", epochs=2, output_dir="runs/demo")
run.metrics["test"]["accuracy"]
run.history  # a DataFrame, one row per epoch
run.predictor().predict(["WINNER! Claim your prize now"])
```

It runs the same pipeline as `kerastrain train` (`kerastrain.pipeline`), so a
run trained here can be resumed, reported and compressed from the command line.
"""

import dataclasses

import numpy as np

from kerastrain.errors import UsageError
from kerastrain.run_folder import Run

# What `config.data` records for examples given in memory (no file to reload).
IN_MEMORY_DATA = {"dataframe": "a pandas DataFrame", "arrays": "inputs and labels given in memory"}


def train(recipe_or_config, data=None, **settings):
    """Trains a recipe and returns the finished run.

    Args:
        recipe_or_config: a recipe's name (`"textcnn"`, `"mlp"`), a
            `kerastrain.recipe.Recipe`, or a config such as
            `kerastrain.TextCNNConfig(epochs=5)`.
        data: what to train on: a CSV path or a dataset name (as `--data`
            takes), a pandas DataFrame with the config's `text_column` (or
            numeric feature columns) and `label_column`, or a tuple
            `(inputs, labels)` of texts or a 2-D array of numeric features and
            their labels. Defaults to `None` (the config's `data`).
        **settings: config fields that override the recipe's defaults (or the
            given config), such as `epochs=2` or `output_dir="runs/demo"`.

    Returns:
        The finished `kerastrain.Run`. In a cluster job, tasks other than the
        chief return `None`.

    Raises:
        UsageError: for an unknown recipe or setting, a value out of range, or
            unusable data; nothing is written before these checks.

    Example:

    ```python
    frame = pandas.read_csv("reviews.csv")
    run = kerastrain.train("textcnn", data=frame, text_column="body", label_column="stars", epochs=3)
    print(run.metrics["test"]["accuracy"], run.path)
    ```
    """
    from kerastrain import pipeline
    from kerastrain.recipes import find_recipe, recipe_for_config

    recipe, config = resolve(recipe_or_config, settings, find_recipe, recipe_for_config)
    examples = None
    if data is not None:
        if isinstance(data, str):
            config = dataclasses.replace(config, data=data)
            config.validate()
        else:
            examples, name = examples_in_memory(data, config, recipe.takes_numeric_features)
            config = dataclasses.replace(config, data=name)
    return pipeline.train(recipe, config, examples)


def resolve(recipe_or_config, settings, find_recipe, recipe_for_config):
    """The recipe and the validated config that `train` was asked for."""
    from kerastrain.config import TrainingConfig
    from kerastrain.recipe import Recipe

    if isinstance(recipe_or_config, str):
        recipe, base = find_recipe(recipe_or_config), None
    elif isinstance(recipe_or_config, Recipe):
        recipe, base = recipe_or_config, None
    elif isinstance(recipe_or_config, TrainingConfig):
        recipe, base = recipe_for_config(recipe_or_config), recipe_or_config
    else:
        raise UsageError(
            "Expected a recipe's name (such as 'textcnn'), a Recipe or a recipe's config. "
            f"Received: {type(recipe_or_config).__name__}"
        )
    known = {item.name for item in dataclasses.fields(recipe.config_class)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UsageError(
            f"{unknown[0]!r} is not a setting of the {recipe.name} recipe. Settings are the flag names with "
            f"underscores (see kerastrain train {recipe.name} --help)."
        )
    if isinstance(settings.get("output_dir"), str) and not settings["output_dir"].strip():
        raise UsageError("output_dir is empty. Pass a folder, or leave it out to let kerastrain name the run folder.")
    settings = {name: tuple(value) if isinstance(value, list) else value for name, value in settings.items()}
    try:
        config = dataclasses.replace(base, **settings) if base is not None else recipe.config_class(**settings)
    except TypeError as error:
        raise UsageError(f"Cannot make a {recipe.config_class.__name__}: {error}") from None
    config.validate()
    config.check_given_settings_apply(settings)
    return recipe, config


def examples_in_memory(data, config, takes_numeric_features=False):
    """`kerastrain.data.Examples` of a DataFrame or of `(inputs, labels)`, checked as a CSV's would be.

    Args:
        data: a DataFrame, or a tuple `(inputs, labels)`.
        config: the run's config, whose `text_column` and `label_column` name
            a DataFrame's columns.
        takes_numeric_features: whether the recipe trains on numeric columns
            when a DataFrame has no text column. Defaults to `False`.

    Returns:
        A tuple `(examples, name)`: the examples, and what `config.data`
        records for them.

    Raises:
        UsageError: if `data` is of another type, or unusable.
    """
    import pandas as pd

    from kerastrain.data import tables

    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise UsageError("data is an empty DataFrame. Pass rows of examples.")
        if config.text_column in data.columns or not takes_numeric_features:
            examples = tables.text_examples(data, config.text_column, config.label_column, IN_MEMORY_DATA["dataframe"])
        else:
            examples = tables.numeric_examples(data, config.label_column, IN_MEMORY_DATA["dataframe"])
        tables.check_classes(examples.labels, examples.source)
        return examples, "dataframe"
    if isinstance(data, tuple) and len(data) == 2:
        inputs, labels = data
        labels = list(labels)
        if isinstance(inputs, str) or len(inputs) != len(labels):
            raise UsageError(
                f"Expected data=(inputs, labels) of the same length. Received: {len(inputs)} inputs "
                f"and {len(labels)} labels"
            )
        if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "iuf":
            if inputs.ndim != 2:
                raise UsageError(f"Expected numeric inputs as a 2-D array (rows, features). Received: shape {inputs.shape}")
            frame = pd.DataFrame(inputs, columns=[f"feature_{index}" for index in range(inputs.shape[1])])
            frame[config.label_column] = labels
            examples = tables.numeric_examples(frame, config.label_column, IN_MEMORY_DATA["arrays"])
        else:
            frame = pd.DataFrame({config.text_column: list(inputs), config.label_column: labels})
            examples = tables.text_examples(frame, config.text_column, config.label_column, IN_MEMORY_DATA["arrays"])
        tables.check_classes(examples.labels, examples.source)
        return examples, "arrays"
    raise UsageError(
        "Expected data to be a CSV path or dataset name, a pandas DataFrame, or a tuple (inputs, labels). "
        f"Received: {type(data).__name__}"
    )


__all__ = ["Run", "train"]
