"""Reading labelled examples from CSV files, with one-line errors for bad input."""

import gzip
import os
import sys
import zlib

import numpy as np
import pandas as pd

from kerastrain.data.examples import Examples
from kerastrain.errors import UsageError


def read_csv(path, flag="--data"):
    """Reads a `.csv` or gzipped `.csv.gz` file into a DataFrame.

    Args:
        path: the file's path.
        flag: the command-line flag that named the file, for error messages.
            Defaults to `"--data"`.

    Raises:
        UsageError: if the file is missing, empty, corrupt or truncated.
    """
    if not os.path.isfile(path):
        raise UsageError(
            f"{flag} {path}: no such file. Pass the path of a CSV file (.csv or .csv.gz)."
        )
    try:
        frame = pd.read_csv(path, compression="infer")
    except pd.errors.EmptyDataError:
        raise UsageError(f"{flag} {path} is empty. Pass a CSV with a header row and data rows.") from None
    except (gzip.BadGzipFile, EOFError, zlib.error):
        raise UsageError(
            f"{flag} {path} is not a readable gzip file (corrupt or truncated). "
            "Download or compress it again."
        ) from None
    except UnicodeDecodeError:
        raise UsageError(f"{flag} {path} is not UTF-8 text. Save it as UTF-8 CSV.") from None
    except pd.errors.ParserError as error:
        first_line = str(error).strip().splitlines()[0]
        raise UsageError(f"{flag} {path} is not a well-formed CSV ({first_line}). Fix the file.") from None
    if frame.empty:
        raise UsageError(f"{flag} {path} has a header but no rows. Pass a CSV with data rows.")
    return frame


def require_column(frame, column, flag, source):
    if column not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:12]))
        raise UsageError(
            f"{flag} {column!r} is not a column of {source} (columns: {columns}). "
            f"Pass {flag} with one of them."
        )


def text_examples(frame, text_column, label_column, source):
    """Texts and labels of a DataFrame; rows with no text or no label are dropped.

    Raises:
        UsageError: if a column is missing or no row is left.
    """
    require_column(frame, text_column, "--text-column", source)
    require_column(frame, label_column, "--label-column", source)
    texts = frame[text_column]
    labels = frame[label_column]
    usable = texts.notna() & labels.notna()
    usable &= texts.astype(str).str.strip().ne("")
    if not usable.any():
        raise UsageError(
            f"{source} has no row with both a text in {text_column!r} and a label in "
            f"{label_column!r}. Check the columns with --text-column and --label-column."
        )
    report_dropped(len(frame) - int(usable.sum()), "empty or missing text or label", source)
    # pandas 3 returns string arrays that TensorFlow cannot convert: plain objects.
    return Examples(
        inputs=texts[usable].astype(str).tolist(),
        labels=label_strings(labels[usable]),
        source=source,
    )


def numeric_examples(frame, label_column, source):
    """Numeric feature columns and labels of a DataFrame.

    Every column except `label_column` is a feature. Rows with a missing value
    are dropped with a count.

    Raises:
        UsageError: if the label column is missing, a feature column is not
            numeric, or no row is left.
    """
    require_column(frame, label_column, "--label-column", source)
    features = frame.drop(columns=[label_column])
    if features.shape[1] == 0:
        raise UsageError(f"{source} has only the label column. Add feature columns.")
    not_numeric = [name for name in features.columns if not pd.api.types.is_numeric_dtype(features[name])]
    if not_numeric:
        raise UsageError(
            f"{source} has non-numeric column {not_numeric[0]!r} and no text column. Pass "
            "--text-column NAME for a text dataset, or give numeric feature columns only."
        )
    labels = frame[label_column]
    usable = features.notna().all(axis=1) & labels.notna()
    if not usable.any():
        raise UsageError(f"{source} has no row without missing values. Fill or drop them.")
    report_dropped(len(frame) - int(usable.sum()), "missing values", source)
    return Examples(
        inputs=features[usable].to_numpy(dtype=np.float32),
        labels=label_strings(labels[usable]),
        source=source,
        feature_names=[str(name) for name in features.columns],
    )


def label_strings(labels):
    """Class names as strings; whole-number floats lose their `.0`."""
    if pd.api.types.is_float_dtype(labels) and (labels % 1 == 0).all():
        labels = labels.astype(np.int64)
    return labels.astype(str).to_numpy(dtype=object)


def check_classes(labels, source):
    """Raises `UsageError` unless there are at least two classes."""
    classes = np.unique(labels)
    if len(classes) < 2:
        raise UsageError(
            f"{source} has a single class ({classes[0]!r}); a classifier needs at least two. "
            "Check --label-column or add examples of other classes."
        )


def report_dropped(count, reason, source):
    if count:
        print(f"kerastrain: dropped {count} rows of {source} with {reason}", file=sys.stderr)
