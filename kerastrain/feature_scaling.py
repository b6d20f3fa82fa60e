"""Standardized numeric feature columns, as the MLP's preprocessor."""

import numpy as np
import pandas as pd
from sklearn import base, preprocessing

from kerastrain.errors import UsageError


class FeatureScaler(base.TransformerMixin, base.BaseEstimator):
    """Standardizes named numeric columns with the training split's mean and spread.

    It remembers the columns' names, so rows given as a DataFrame (a CSV at
    prediction) are matched by name whatever their order; rows given as an
    array are taken to be in the training order.

    Example:

    ```python
    scaler = FeatureScaler().fit(train_rows, feature_names=["width", "height"])
    scaler.model_inputs(pd.DataFrame({"height": [2.0], "width": [1.0]}))
    ```
    """

    takes_text = False

    def fit(self, rows, y=None, feature_names=None):
        """Learns each column's mean and standard deviation.

        Args:
            rows: a 2-D array or a DataFrame of numeric features.
            y: ignored. Defaults to `None`.
            feature_names: the columns' names when `rows` is an array.
                Defaults to `None` (`feature_0`, `feature_1`, ...).
        """
        if isinstance(rows, pd.DataFrame):
            frame = rows
        else:
            rows = np.asarray(rows)
            names = feature_names or [f"feature_{index}" for index in range(rows.shape[1])]
            frame = pd.DataFrame(rows, columns=list(names))
        self.feature_names = [str(name) for name in frame.columns]
        self.scaler_ = preprocessing.StandardScaler().fit(frame.to_numpy(dtype=np.float64))
        return self

    def transform(self, rows):
        return self.model_inputs(rows)

    def model_inputs(self, rows):
        """The model's float32 feature matrix for `rows` (a DataFrame, or an array in training order).

        Raises:
            UsageError: if a DataFrame lacks a training column.
        """
        if isinstance(rows, pd.DataFrame):
            missing = [name for name in self.feature_names if name not in rows.columns]
            if missing:
                raise UsageError(
                    f"The rows lack feature column {missing[0]!r} that the model was trained on. "
                    "Pass rows with the training columns."
                )
            rows = rows[self.feature_names].to_numpy(dtype=np.float64)
        else:
            rows = np.asarray(rows, dtype=np.float64)
            if rows.ndim == 1:
                rows = rows[None, :]
            if rows.shape[1] != len(self.feature_names):
                raise UsageError(
                    f"Expected rows of {len(self.feature_names)} feature values. Received: {rows.shape[1]} per row"
                )
        if hasattr(self.scaler_, "feature_names_in_"):  # fitted on a DataFrame, as older run folders were
            rows = pd.DataFrame(rows, columns=self.scaler_.feature_names_in_)
        return self.scaler_.transform(rows).astype(np.float32)

    @property
    def num_features(self):
        return len(self.feature_names)

    def describe(self):
        return f"{self.num_features:,} features"

    @classmethod
    def from_standard_scaler(cls, scaler):
        """Wraps a fitted scikit-learn `StandardScaler`, as older run folders saved it."""
        wrapped = cls()
        names = getattr(scaler, "feature_names_in_", None)
        wrapped.feature_names = (
            [str(name) for name in names] if names is not None else [f"feature_{i}" for i in range(scaler.n_features_in_)]
        )
        wrapped.scaler_ = scaler
        return wrapped
