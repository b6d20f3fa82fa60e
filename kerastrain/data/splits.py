"""Stratified, seeded train/validation/test splits."""

import dataclasses
import sys

import numpy as np

from kerastrain.data.examples import Examples
from kerastrain.errors import UsageError


@dataclasses.dataclass
class Split:
    """The three parts of a dataset, each an `Examples`."""

    train: object
    validation: object
    test: object


def stratified_split(examples, validation_fraction, test_fraction, seed, max_examples=0):
    """Splits examples into train, validation and test parts with equal class shares.

    Args:
        examples: an `Examples`.
        validation_fraction: fraction of all examples for validation.
        test_fraction: fraction of all examples for the test.
        seed: seed of the shuffles; the same seed gives the same split.
        max_examples: if positive, a stratified sample of this size is split
            instead of all examples. Defaults to `0`.

    Returns:
        A `Split`.

    Raises:
        UsageError: if a class has too few examples to appear in every part.
    """
    # scikit-learn takes a second or two to import: not before the data has loaded.
    from sklearn import model_selection

    indices = np.arange(len(examples))
    labels = examples.labels
    classes, counts = np.unique(labels, return_counts=True)
    needed = 3
    if counts.min() < needed:
        rare = classes[counts.argmin()]
        raise UsageError(
            f"Class {rare!r} of {examples.source} has {counts.min()} example(s); a stratified "
            f"train/validation/test split needs at least {needed} per class. Add examples or "
            "drop that class."
        )
    try:
        if 0 < max_examples < len(indices):
            indices, _ = model_selection.train_test_split(
                indices, train_size=max_examples, stratify=labels, random_state=seed
            )
        rest, test = model_selection.train_test_split(
            indices,
            test_size=test_fraction,
            stratify=labels[indices],
            random_state=seed,
        )
        train, validation = model_selection.train_test_split(
            rest,
            test_size=validation_fraction / (1.0 - test_fraction),
            stratify=labels[rest],
            random_state=seed,
        )
    except ValueError as error:
        raise UsageError(
            f"Cannot split {len(indices)} examples of {examples.source} with every class in "
            f"every part ({error}). Use more data or a larger --max-examples."
        ) from None
    return Split(examples.subset(train), examples.subset(validation), examples.subset(test))


def split_as_configured(examples, config):
    """Splits examples with the fractions, seed and sample size of a run's config.

    Training, a search and a later look at a finished run (its config read back
    from `config.json`) all call this, so the same config gives the same split.

    Args:
        examples: an `Examples`.
        config: an object with the attributes `validation_fraction`,
            `test_fraction`, `seed` and `max_examples`, such as a `TrainingConfig`.

    Returns:
        A `Split`, as `stratified_split` returns.
    """
    return stratified_split(
        examples, config.validation_fraction, config.test_fraction, config.seed, config.max_examples
    )


def join(first, second):
    """The examples of `first`, then those of `second`, as one `Examples` (of `first`'s source)."""
    if first.is_text:
        inputs = list(first.inputs) + list(second.inputs)
    else:
        inputs = np.concatenate([first.inputs, second.inputs])
    return Examples(inputs, np.concatenate([first.labels, second.labels]), first.source, first.feature_names)


def encode_labels(split):
    """Class names (sorted) and the int class ids of each part of a split."""
    class_names = sorted(np.unique(split.train.labels).tolist())
    lookup = {name: index for index, name in enumerate(class_names)}

    def ids(part):
        return np.asarray([lookup[label] for label in part.labels], dtype=np.int32)

    return class_names, ids(split.train), ids(split.validation), ids(split.test)


def training_batch_size(batch_size, accumulate_steps, train_examples, source):
    """The batch size to train with: `batch_size`, or the training split's size when that is smaller.

    One training step takes `batch_size * accumulate_steps` examples. When the
    training split has fewer, a step would cycle through it several times and
    an epoch would be that many passes over the data: the batch is cut to
    `train_examples // accumulate_steps` instead, with a note on stderr, so
    that an epoch stays one pass. The config keeps the value asked for.

    Args:
        batch_size: the `--batch-size` asked for.
        accumulate_steps: the `--accumulate-steps` asked for.
        train_examples: the number of examples in the training split.
        source: where the examples came from, for the note.

    Returns:
        The batch size of a training (micro-)batch, an int from 1 to `batch_size`.

    Raises:
        UsageError: if `accumulate_steps` alone is more than `train_examples`.

    Example:

    ```python
    training_batch_size(64, 1, train_examples=40, source="tiny.csv")  # 40, with a note
    ```
    """
    if batch_size * accumulate_steps <= train_examples:
        return batch_size
    if accumulate_steps > train_examples:
        raise UsageError(
            f"--accumulate-steps {accumulate_steps} is more than the {train_examples} training examples of "
            f"{source}, so no micro-batch would hold an example. Pass --accumulate-steps {max(train_examples, 1)} "
            "or less, or use more data."
        )
    capped = train_examples // accumulate_steps
    asked = f"--batch-size {batch_size}" + (f" x --accumulate-steps {accumulate_steps}" if accumulate_steps > 1 else "")
    print(
        f"kerastrain: {asked} is more than the {train_examples} training examples of {source}; "
        f"training on batches of {capped}, so that an epoch is one pass over them",
        file=sys.stderr,
    )
    return capped
