"""Numeric features that are the pixels of square grayscale images.

A table whose columns are the pixels of an image (MNIST's 784 = 28 x 28,
scikit-learn's digits' 64 = 8 x 8) needs other preprocessing than a table of
unrelated measurements: one scale for every pixel, since standardizing each
column by itself turns the border pixels, almost always 0, into large values
whenever they are not; and shifts of the image, which mean nothing for other
tables, are a fair augmentation. This module tells such tables apart and
fits their scaler. It needs NumPy and scikit-learn only.
"""

import math

import numpy as np

# The smallest image side taken for an image: scikit-learn's 8 x 8 digits.
MIN_SIDE = 8
# Pixel values lie between 0 and this (8-bit grayscale, or less: digits go to 16).
MAX_PIXEL_VALUE = 255.0


def image_side(features):
    """The side of the square images that the columns of `features` hold, or 0.

    Columns are taken for the pixels of square images when there are `side x
    side` of them with `side >= 8`, and every value of `features` (the
    training split) is a number from 0 to 255.

    Args:
        features: a 2-D array, one row per example.

    Returns:
        The image side, an int, or `0` for a table that is not image-shaped.

    Example:

    ```python
    image_side(np.zeros((10, 784)))  # 28
    image_side(np.zeros((10, 13)))   # 0
    ```
    """
    features = np.asarray(features)
    if features.ndim != 2 or features.size == 0:
        return 0
    side = math.isqrt(features.shape[1])
    if side < MIN_SIDE or side * side != features.shape[1]:
        return 0
    if not np.isfinite(features).all() or features.min() < 0 or features.max() > MAX_PIXEL_VALUE:
        return 0
    return side


def fit_scaler(features, feature_names, per_feature=True):
    """A `FeatureScaler` of named columns, standardizing each column or all of them alike.

    With `per_feature=False` every column gets the mean and the standard
    deviation of all the values of `features`: the scaler shifts and scales
    all pixels alike, so an image stays the same image. It stays a plain
    `FeatureScaler` around a scikit-learn `StandardScaler` (whose `mean_` and
    `scale_` then hold that one value for every column), which prediction
    uses as it uses any other.

    Args:
        features: a 2-D array of the training split.
        feature_names: the column names.
        per_feature: standardize each column by itself. Defaults to `True`.

    Returns:
        A fitted `kerastrain.feature_scaling.FeatureScaler`.
    """
    from kerastrain.feature_scaling import FeatureScaler

    scaler = FeatureScaler().fit(features, feature_names=feature_names)
    if not per_feature:
        values = np.asarray(features, dtype=np.float64)
        mean, variance = values.mean(), values.var()
        standard = scaler.scaler_
        standard.mean_ = np.full(values.shape[1], mean)
        standard.var_ = np.full(values.shape[1], variance)
        standard.scale_ = np.full(values.shape[1], math.sqrt(variance) if variance > 0 else 1.0)
    return scaler
