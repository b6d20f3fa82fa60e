"""Loading labelled examples: CSV files, bundled datasets and online loaders.

Nothing here imports TensorFlow except the online Keras loaders, and they only
when called, so bad data is reported before TensorFlow's start-up cost.
"""

import os

from kerastrain.data import bundled, online, tables
from kerastrain.data.examples import Examples
from kerastrain.errors import UsageError

TEXT_DATASETS = {
    "sms": bundled.load_sms_spam,
    "imdb": online.load_imdb,
    "20newsgroups": online.load_20newsgroups,
}
NUMERIC_DATASETS = {
    "digits": bundled.load_digits,
    "mnist": online.load_mnist,
}


def load_examples(source, text_column="text", label_column="label", allow_numeric=False):
    """Loads labelled examples from a CSV path or a dataset name.

    A CSV whose `text_column` exists is read as text; otherwise, if
    `allow_numeric`, every other column is read as a numeric feature.

    Args:
        source: a `.csv`/`.csv.gz` path, or a name from `TEXT_DATASETS` (and
            `NUMERIC_DATASETS` when `allow_numeric`).
        text_column: name of the text column of a CSV. Defaults to `"text"`.
        label_column: name of the label column of a CSV. Defaults to `"label"`.
        allow_numeric: whether numeric feature tables are accepted. Defaults to
            `False`.

    Returns:
        An `Examples` with at least two classes and no empty inputs.

    Raises:
        UsageError: for a missing or unreadable file, a missing column, no usable
            rows, or a single class.
    """
    names = dict(TEXT_DATASETS)
    if allow_numeric:
        names.update(NUMERIC_DATASETS)
    if not str(source).strip():
        raise UsageError(f"--data is empty. Pass a CSV path or one of: {', '.join(names)}.")
    # Only a file named like a dataset is read instead of it (a folder "sms" is not).
    if source in names and not os.path.isfile(source):
        examples = names[source]()
    elif looks_like_a_path(source):
        frame = tables.read_csv(source)
        if text_column in frame.columns or not allow_numeric:
            examples = tables.text_examples(frame, text_column, label_column, source)
        else:
            examples = tables.numeric_examples(frame, label_column, source)
    else:
        raise UsageError(
            f"--data {source!r} is neither a file nor a dataset name. Pass a CSV path or "
            f"one of: {', '.join(names)}."
        )
    tables.check_classes(examples.labels, source)
    return examples


TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".gz", ".bz2", ".xz", ".zip", ".zst", ".parquet", ".xls", ".xlsx")


def looks_like_a_path(source):
    return (
        os.path.lexists(source)
        or source.lower().endswith(TABLE_SUFFIXES)
        or os.sep in source
        or "/" in source
    )


__all__ = ["Examples", "load_examples", "TEXT_DATASETS", "NUMERIC_DATASETS"]
