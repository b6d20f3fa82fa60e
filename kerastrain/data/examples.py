"""The container that the data loaders return."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Examples:
    """Labelled examples, as the data loaders return them.

    Attributes:
        inputs: a list of texts, or a 2-D float32 array of numeric features.
        labels: a 1-D array of class names (strings), one per input.
        source: where the examples came from, for messages and reports.
        feature_names: the column names of numeric features, else `None`.
    """

    inputs: object
    labels: np.ndarray
    source: str
    feature_names: list = None

    @property
    def is_text(self):
        return self.feature_names is None

    def __len__(self):
        return len(self.labels)

    def subset(self, indices):
        """The examples at `indices`, in that order."""
        if self.is_text:
            inputs = [self.inputs[index] for index in indices]
        else:
            inputs = self.inputs[indices]
        return Examples(inputs, self.labels[indices], self.source, self.feature_names)
