"""Datasets that ship with kerastrain or with scikit-learn, for offline use."""

import importlib.resources

import numpy as np
import pandas as pd

from kerastrain.data.examples import Examples


def sms_spam_path():
    """Path of the bundled SMS Spam Collection (see `NOTICE.md` beside it)."""
    return importlib.resources.files("kerastrain.data") / "sms_spam.csv.gz"


def load_sms_spam():
    """The SMS Spam Collection v.1: 5,574 SMS labelled `ham` or `spam`.

    Almeida, Gómez Hidalgo and Yamakami, DOCENG 2011; CC BY 4.0 (UCI dataset 228).
    """
    with importlib.resources.as_file(sms_spam_path()) as path:
        frame = pd.read_csv(path)
    return Examples(
        inputs=frame["text"].astype(str).tolist(),
        labels=frame["label"].astype(str).to_numpy(dtype=object),
        source="sms",
    )


def load_digits():
    """scikit-learn's 8x8 handwritten digits: 1,797 images as 64 pixel columns."""
    from sklearn import datasets

    digits = datasets.load_digits()
    return Examples(
        inputs=digits.data.astype(np.float32),
        labels=digits.target.astype(str).astype(object),
        source="digits",
        feature_names=[f"pixel{index}" for index in range(digits.data.shape[1])],
    )
