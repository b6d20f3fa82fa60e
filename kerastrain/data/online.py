"""Datasets downloaded on first use: IMDB and MNIST (Keras), 20 Newsgroups (sklearn).

They need the internet once; offline, each fails with one line that says how to
train on local data instead.
"""

import numpy as np

from kerastrain.data.examples import Examples
from kerastrain.errors import UsageError


def download_failed(name, error):
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return UsageError(
        f"--data {name}: could not download it ({reason}); it needs the internet once. "
        "Offline, pass a local CSV with --data PATH or a bundled dataset (sms, digits)."
    )


def load_imdb():
    """IMDB movie reviews (50,000, `pos`/`neg`), decoded back to text."""
    from kerastrain.backend import keras

    try:
        (train_ids, train_labels), (test_ids, test_labels) = keras.datasets.imdb.load_data()
        word_index = keras.datasets.imdb.get_word_index()
    except Exception as error:  # Keras wraps network errors in a bare Exception.
        raise download_failed("imdb", error) from None
    # load_data shifts word ids by 3 (0: padding, 1: start, 2: unknown).
    words = {index + 3: word for word, index in word_index.items()}
    reviews = np.concatenate([train_ids, test_ids])
    texts = [" ".join(words.get(index, "") for index in review[1:]) for review in reviews]
    labels = np.where(np.concatenate([train_labels, test_labels]) == 1, "pos", "neg")
    return Examples(texts, labels.astype(object), "imdb")


def load_mnist():
    """MNIST handwritten digits: 70,000 28x28 images as 784 pixel columns."""
    from kerastrain.backend import keras

    try:
        (train_images, train_labels), (test_images, test_labels) = keras.datasets.mnist.load_data()
    except Exception as error:
        raise download_failed("mnist", error) from None
    images = np.concatenate([train_images, test_images]).reshape(-1, 28 * 28)
    labels = np.concatenate([train_labels, test_labels]).astype(str).astype(object)
    names = [f"pixel{index + 1}" for index in range(28 * 28)]
    return Examples(images.astype(np.float32), labels, "mnist", feature_names=names)


def load_20newsgroups():
    """20 Newsgroups (18,846 posts, 20 topics) without headers, footers and quotes."""
    from sklearn import datasets

    try:
        bunch = datasets.fetch_20newsgroups(subset="all", remove=("headers", "footers", "quotes"))
    except Exception as error:
        raise download_failed("20newsgroups", error) from None
    names = np.asarray(bunch.target_names, dtype=object)
    texts, labels = [], []
    for text, target in zip(bunch.data, bunch.target):
        if text.strip():
            texts.append(text)
            labels.append(names[target])
    return Examples(texts, np.asarray(labels, dtype=object), "20newsgroups")
