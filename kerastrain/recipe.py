"""What makes one recipe differ from another: the `Recipe` object.

A recipe is a small set of functions: how to load its examples, how to fit the
preprocessor that turns raw inputs into the model's inputs, and how to build
the model from the fitted preprocessor. Everything else (splitting, the
strategy, precision, training, checkpoints, evaluation, the report) is the same
for every recipe and lives in `kerastrain.pipeline`, which runs a `Recipe` for
the command line, `kerastrain.train`, the tuner's trials and a job's evaluator.

A recipe module in `kerastrain/recipes/` defines one `Recipe` named `RECIPE`;
`kerastrain train NAME` and `kerastrain.train("NAME")` find it by the module's
name (see `kerastrain.recipes.find_recipe`).

The preprocessor that `fit_preprocessor` returns is saved with the model, so
that prediction takes raw input. It provides:

- `model_inputs(inputs)`: the model's inputs (an array, or a dict of named
  arrays) for raw inputs (texts, or rows of feature values);
- `takes_text`: whether its raw inputs are texts;
- `describe()`: a few words for the run's first line, such as
  `"20,000-word vocabulary"` or `"64 features"`.
"""

import dataclasses
import typing


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The parts of a recipe that the shared pipeline calls, in this order.

    Attributes:
        name: the recipe's name on the command line (`kerastrain train NAME`)
            and in default run folders, such as `"textcnn"`.
        config_class: its config dataclass, a subclass of
            `kerastrain.config.TrainingConfig`.
        summary: one line on what it trains, for `kerastrain --help`.
        load_examples: `load_examples(config)` returns the labelled
            `kerastrain.data.Examples` that `config.data` names.
        fit_preprocessor: `fit_preprocessor(config, train_examples)` returns
            the preprocessor fitted on the training split only.
        refit_preprocessor: optionally, `refit_preprocessor(config,
            first_preprocessor, joined_examples)` returns the preprocessor of
            `--refit`, fitted on the training and validation splits. A recipe
            whose preprocessor sizes the model (a vocabulary) can keep the
            first one's sizes here, so that the refit trains the first model's
            compiled step with fresh weights instead of compiling a new one.
            Defaults to `None` (`fit_preprocessor` on the joined splits).
        build_model: `build_model(config, preprocessor, num_classes)` returns
            the uncompiled `keras.Model`; the pipeline calls it inside the
            strategy's scope.
        length_buckets: optionally, `length_buckets(config, train_inputs)`
            returns a `kerastrain.length_buckets.LengthBuckets` for the
            training inputs, or `None`. Defaults to `None` (batches padded to
            one length).
        augmentation: optionally, `augmentation(config, preprocessor,
            train_examples, train_inputs)` returns a
            `kerastrain.augmentation.TrainingAugmentation`: the training
            inputs it needs and the function that changes training batches
            (`--augment`). Defaults to `None` (no augmentation).
        takes_numeric_features: whether the recipe trains on numeric feature
            columns when its data has no text column (a CSV or a DataFrame).
            Defaults to `False` (texts only).
        reduced_precision_on_cpu: whether `--precision auto` may try a reduced
            precision on a CPU for this recipe's models. Defaults to `True`.

    Example:

    ```python
    RECIPE = Recipe(
        name="linear",
        config_class=LinearConfig,
        summary="a softmax regression on numeric columns",
        load_examples=load_examples,
        fit_preprocessor=fit_preprocessor,
        build_model=build_model,
    )
    ```
    """

    name: str
    config_class: type
    summary: str
    load_examples: typing.Callable
    fit_preprocessor: typing.Callable
    build_model: typing.Callable
    length_buckets: typing.Optional[typing.Callable] = None
    takes_numeric_features: bool = False
    reduced_precision_on_cpu: bool = True
    augmentation: typing.Optional[typing.Callable] = None
    refit_preprocessor: typing.Optional[typing.Callable] = None

    def fit_refit_preprocessor(self, config, first_preprocessor, joined_examples):
        """The preprocessor of `--refit`, fitted on `joined_examples` (the training and validation splits)."""
        if self.refit_preprocessor is None:
            return self.fit_preprocessor(config, joined_examples)
        return self.refit_preprocessor(config, first_preprocessor, joined_examples)

    def training_length_buckets(self, config, train_inputs):
        """The recipe's length buckets for `train_inputs`, or `None` when it has none."""
        if self.length_buckets is None:
            return None
        return self.length_buckets(config, train_inputs)

    def training_augmentation(self, config, preprocessor, train_examples, train_inputs):
        """The recipe's `TrainingAugmentation` of its training inputs (none without `augmentation`)."""
        from kerastrain import augmentation

        if self.augmentation is None:
            return augmentation.TrainingAugmentation(train_inputs)
        return self.augmentation(config, preprocessor, train_examples, train_inputs)
