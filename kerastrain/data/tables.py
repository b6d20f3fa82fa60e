"""Reading labelled examples from CSV files, with one-line errors for bad input.

A file is read whatever its compression (gzip, bz2, xz, or a zip archive of one
file; told by the file's name, else by its first bytes) and its separator
(comma, tab, semicolon or pipe; told by its first rows). Column names lose stray
spaces (`text, label`). Anything else that is not a table of UTF-8 text is
refused with one line that names the file and the fix.
"""

import bz2
import csv
import gzip
import io
import itertools
import lzma
import os
import re
import stat
import sys
import warnings
import zipfile
import zlib

import numpy as np
import pandas as pd

from kerastrain.data.examples import Examples
from kerastrain.errors import UsageError

SEPARATORS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
DESCRIPTIONS = {",": "CSV", "\t": "tab-separated file", ";": "semicolon-separated file", "|": "pipe-separated file"}
COMPRESSION_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
COMPRESSION_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip"}
OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
DECOMPRESSION_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)
# Files that users pass for a CSV by mistake, by their first bytes.
OTHER_FORMATS = {
    b"PAR1": "a Parquet file",
    b"\xd0\xcf\x11\xe0": "an Excel (.xls) workbook",
    b"\x89PNG": "a PNG image",
    b"%PDF": "a PDF document",
    b"\x89HDF": "an HDF5 file",
    b"\x28\xb5\x2f\xfd": "a zstd-compressed file",
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive",
    b"Rar!": "a RAR archive",
    b"SQLite format 3": "an SQLite database",
}
SAMPLE_BYTES = 1 << 16
SAMPLE_ROWS = 50
UNNAMED = re.compile(r"Unnamed: \d+")
DECIMAL_COMMA = re.compile(r"\s*[-+]?\d*,\d+\s*")
# A label column with a class of its own in more than this share of its rows
# holds texts, ids or measurements, not classes.
MOST_ROWS = 0.5


def read_csv(path, flag="--data"):
    """Reads a table of text (CSV, tab- or semicolon-separated, maybe compressed) into a DataFrame.

    Args:
        path: the file's path.
        flag: the command-line flag that named the file, for error messages.
            Defaults to `"--data"`.

    Returns:
        A DataFrame whose column names have no leading or trailing spaces;
        unnamed columns are called `Unnamed: N`, as pandas calls them.

    Raises:
        UsageError: if the path is not a readable file, the file is empty,
            corrupt, truncated, not UTF-8 text, not a table, or has two
            columns of the same name.
    """
    path = os.fspath(path)
    check_readable_file(path, flag)
    source = CompressedFile(path, flag)
    sample, truncated = source.sample()
    encoding = "utf-16" if sample.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    check_is_text(sample, path, flag, encoding)
    text = decode_sample(sample, truncated, encoding, path, flag)
    if not text.strip():
        raise UsageError(f"{flag} {path} is empty. Pass a CSV with a header row and data rows.")
    check_is_a_table(text, path, flag)
    separator = detect_separator(text, truncated)
    try:
        header = sample_rows(text, separator, truncated)[0]
    except csv.Error:  # a field longer than the csv module reads: pandas reads it, or names the problem
        header = []
    check_unique_names(header, path, flag)
    description = DESCRIPTIONS[separator]
    quote_hint = f"Put texts that contain a {SEPARATORS[separator]} in double quotes"
    try:
        with source.open() as stream, warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(stream, sep=separator, skipinitialspace=True, index_col=False, encoding=encoding)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{flag} {path} is empty. Pass a CSV with a header row and data rows.") from None
    except pd.errors.ParserWarning:
        raise UsageError(
            f"{flag} {path} has rows with more fields than its header ({len(header)} columns). "
            f"{quote_hint}, or name every column in the header."
        ) from None
    except UnicodeDecodeError:
        raise UsageError(f"{flag} {path} is not UTF-8 text. Save it as UTF-8 CSV.") from None
    except pd.errors.ParserError as error:
        first_line = str(error).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ")
        hint = f"{quote_hint}, or fix the file." if "Expected" in first_line else "Fix the file."
        raise UsageError(f"{flag} {path} is not a well-formed {description} ({first_line}). {hint}") from None
    except DECOMPRESSION_ERRORS + (OSError,) as error:
        raise source.unreadable(error) from None
    frame.columns = [str(name).strip() for name in frame.columns]
    if frame.empty:
        raise UsageError(f"{flag} {path} has a header but no rows. Pass a CSV with data rows.")
    return frame


def check_readable_file(path, flag):
    """Raises `UsageError` unless `path` is a regular file that this process may read."""
    if not path:
        raise UsageError(f"{flag} is empty. Pass the path of a CSV file (.csv or .csv.gz).")
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise UsageError(
                f"{flag} {path} is a link to {os.readlink(path)}, which does not exist. Pass the file itself."
            ) from None
        raise UsageError(f"{flag} {path}: no such file. Pass the path of a CSV file (.csv or .csv.gz).") from None
    except NotADirectoryError:
        raise UsageError(f"{flag} {path}: no such file (a part of the path is a file, not a folder).") from None
    except PermissionError:
        raise UsageError(
            f"{flag} {path} cannot be read: permission denied on a folder above it. "
            "Check the folders' permissions, or copy the file somewhere readable."
        ) from None
    except (OSError, ValueError) as error:
        raise UsageError(f"{flag} {path} is not a usable path ({error}). Pass the path of a CSV file.") from None
    if stat.S_ISDIR(status.st_mode):
        readable = os.access(path, os.R_OK | os.X_OK)
        inside = sorted(name for name in os.listdir(path) if looks_like_a_table(name)) if readable else []
        example = os.path.join(path, inside[0]) if inside else os.path.join(path, "data.csv")
        raise UsageError(f"{flag} {path} is a folder, not a file. Pass one CSV file, like {flag} {example}.")
    if not stat.S_ISREG(status.st_mode):
        raise UsageError(
            f"{flag} {path} is not a regular file (a device, pipe or socket). "
            "Save the data to a CSV file and pass that."
        )
    if not os.access(path, os.R_OK):
        raise UsageError(
            f"{flag} {path} cannot be read (permission denied). Make it readable (chmod +r) or pass a copy."
        )


def looks_like_a_table(name):
    lower = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        lower = lower.removesuffix(suffix)
    return lower.endswith((".csv", ".tsv", ".txt"))


class CompressedFile:
    """A file and how to read its bytes: plain, gzip, bz2, xz, or the one file of a zip archive."""

    def __init__(self, path, flag):
        self.path = path
        self.flag = flag
        self.compression = self._compression()
        self.member = self._zip_member() if self.compression == "zip" else None

    def _compression(self):
        lower = self.path.lower()
        for suffix, compression in COMPRESSION_SUFFIXES.items():
            if lower.endswith(suffix):
                return compression
        with self._guarded():
            with open(self.path, "rb") as file:
                start = file.read(16)
        for magic, compression in COMPRESSION_MAGIC.items():
            if start.startswith(magic):
                return compression
        return None

    def _zip_member(self):
        with self._guarded():
            with zipfile.ZipFile(self.path) as archive:
                names = archive.namelist()
                members = [
                    info
                    for info in archive.infolist()
                    if not info.is_dir()
                    and not info.filename.startswith("__MACOSX/")
                    and not os.path.basename(info.filename).startswith(".")
                ]
        if "[Content_Types].xml" in names or "mimetype" in names:
            raise UsageError(
                f"{self.flag} {self.path} is a spreadsheet or document (Excel, OpenDocument), not a CSV. "
                "Save it as CSV UTF-8 from the spreadsheet program and pass that."
            )
        if not members:
            raise UsageError(f"{self.flag} {self.path} is a zip archive with no file in it. Pass a CSV file.")
        if len(members) > 1:
            listed = ", ".join(info.filename for info in members[:3]) + (", ..." if len(members) > 3 else "")
            raise UsageError(
                f"{self.flag} {self.path} is a zip archive of {len(members)} files ({listed}). "
                "Extract the CSV to use and pass it."
            )
        if members[0].flag_bits & 0x1:
            raise UsageError(
                f"{self.flag} {self.path} is a password-protected zip archive. Extract the CSV and pass it."
            )
        return members[0].filename

    def open(self):
        """A fresh binary stream of the file's decompressed bytes."""
        if self.compression == "zip":
            archive = zipfile.ZipFile(self.path)
            stream = archive.open(self.member)
            original_close = stream.close

            def close():
                original_close()
                archive.close()

            stream.close = close
            return stream
        if self.compression in OPENERS:
            return OPENERS[self.compression](self.path, "rb")
        return open(self.path, "rb")

    def sample(self):
        """The first bytes of the decompressed file, and whether there are more."""
        with self._guarded():
            with self.open() as stream:
                data = stream.read(SAMPLE_BYTES + 1)
        return data[:SAMPLE_BYTES], len(data) > SAMPLE_BYTES

    def unreadable(self, error):
        if isinstance(error, PermissionError):
            return UsageError(
                f"{self.flag} {self.path} cannot be read (permission denied). Make it readable (chmod +r) "
                "or pass a copy."
            )
        if self.compression is None or isinstance(error, (IsADirectoryError, FileNotFoundError)):
            return UsageError(f"{self.flag} {self.path} cannot be read ({error}). Pass a readable CSV file.")
        kind = "zip archive" if self.compression == "zip" else f"{self.compression} file"
        return UsageError(
            f"{self.flag} {self.path} is not a readable {kind} (corrupt or truncated). "
            "Download or compress it again."
        )

    def _guarded(self):
        return _TranslateErrors(self)


class _TranslateErrors:
    """Turns the errors of opening and decompressing a file into one-line `UsageError`s."""

    def __init__(self, source):
        self.source = source

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is not None and isinstance(error, DECOMPRESSION_ERRORS + (OSError,)):
            raise self.source.unreadable(error) from None
        return False


def check_is_text(sample, path, flag, encoding):
    """Raises `UsageError` if the start of a file is not text (an image, an archive, a database...)."""
    if sample.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):  # UTF-32's mark starts with UTF-16's
        raise UsageError(f"{flag} {path} is UTF-32 text. Save it as UTF-8 CSV.")
    for magic, kind in OTHER_FORMATS.items():
        if sample.startswith(magic):
            raise UsageError(f"{flag} {path} is {kind}, not a CSV. Pass a CSV file (.csv or .csv.gz).")
    if len(sample) > 262 and sample[257:262] == b"ustar":
        raise UsageError(f"{flag} {path} is a tar archive. Extract the CSV (tar -xf) and pass it.")
    if encoding != "utf-16" and b"\x00" in sample:
        raise UsageError(
            f"{flag} {path} holds binary data, not CSV text (or UTF-16 text without a byte-order mark). "
            "Save it as UTF-8 CSV."
        )


def check_is_a_table(text, path, flag):
    """Raises `UsageError` for text that is not a table: JSON, a web page, a Git LFS pointer."""
    start = text.lstrip()[:200].lower()
    if start.startswith(("<!doctype html", "<html", "<?xml")):
        raise UsageError(
            f"{flag} {path} is a web page or XML, not a CSV (a download that failed?). Download the CSV itself."
        )
    if start.startswith("version https://git-lfs"):
        raise UsageError(f"{flag} {path} is a Git LFS pointer, not the data. Run git lfs pull, then pass it again.")
    if start.startswith(("{", "[")):
        raise UsageError(
            f"{flag} {path} looks like JSON, not a CSV. Convert it, for example with "
            "pandas.read_json(path, lines=True).to_csv(\"data.csv\", index=False)."
        )


def decode_sample(sample, truncated, encoding, path, flag):
    try:
        return sample.decode(encoding)
    except UnicodeDecodeError as error:
        if truncated and error.start >= len(sample) - 4:  # a character cut at the sample's end
            return sample[: error.start].decode(encoding, errors="replace")
        raise UsageError(f"{flag} {path} is not UTF-8 text. Save it as UTF-8 CSV.") from None


def sample_rows(text, separator, truncated):
    """The first rows of `text` split at `separator`, without blank rows or a cut last row."""
    reader = csv.reader(io.StringIO(text), delimiter=separator, skipinitialspace=True)
    rows = [row for row in itertools.islice(reader, SAMPLE_ROWS + 1) if any(field.strip() for field in row)]
    if truncated and len(rows) > 1:
        rows = rows[:-1]
    return rows or [[]]


def detect_separator(text, truncated=False):
    """The separator of a table's text: the first of comma, tab, semicolon, pipe that splits it evenly.

    A separator splits a table evenly when the header has at least two fields
    and most of the rows below it have as many. With none that does, the first
    that gives the header two fields wins, else the comma.
    """
    splits_header = []
    for separator in SEPARATORS:
        try:
            rows = sample_rows(text, separator, truncated)
        except csv.Error:
            continue
        width = len(rows[0])
        if width < 2:
            continue
        splits_header.append(separator)
        body = rows[1:]
        if not body or sum(len(row) == width for row in body) >= 0.8 * len(body):
            return separator
    return splits_header[0] if splits_header else ","


def check_unique_names(header, path, flag):
    """Raises `UsageError` if two columns of a header have the same name (spaces aside)."""
    seen = {}
    for position, name in enumerate(header, start=1):
        name = name.strip()
        if not name:
            continue
        if name in seen:
            raise UsageError(
                f"{flag} {path} has two columns named {name!r} (columns {seen[name]} and {position}). "
                "Rename or remove one of them."
            )
        seen[name] = position


def is_unnamed(name):
    return not name or UNNAMED.fullmatch(name) is not None


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
        UsageError: if a column is missing, the two columns are one, the label
            column holds texts rather than classes, or no row is left.
    """
    text_column, label_column = text_column.strip(), label_column.strip()
    require_column(frame, text_column, "--text-column", source)
    require_column(frame, label_column, "--label-column", source)
    if text_column == label_column:
        present = frame[label_column][frame[label_column].notna()]
        check_labels_are_classes(label_strings(present), label_column, frame.columns, source, text_flag=True)
        raise UsageError(
            f"--text-column and --label-column both name column {text_column!r} of {source}. "
            "Pass the column of the classes with --label-column."
        )
    texts = frame[text_column]
    labels = frame[label_column]
    usable = texts.notna() & labels.notna()
    usable &= texts.astype(str).str.strip().ne("") & labels.astype(str).str.strip().ne("")
    if not usable.any():
        raise UsageError(
            f"{source} has no row with both a text in {text_column!r} and a label in "
            f"{label_column!r}. Check the columns with --text-column and --label-column."
        )
    report_dropped(len(frame) - int(usable.sum()), "empty or missing text or label", source)
    # CSVs joined with `cat` repeat the header as a row, which would be a class of its own.
    repeats_header = texts.astype(str).str.strip().eq(text_column) & labels.astype(str).str.strip().eq(label_column)
    report_dropped(int((usable & repeats_header).sum()), "the column names as text and label (CSV files joined?)", source)
    usable &= ~repeats_header
    labels = label_strings(labels[usable])
    check_labels_are_classes(labels, label_column, frame.columns, source, text_flag=True)
    # pandas 3 returns string arrays that TensorFlow cannot convert: plain objects.
    return Examples(inputs=texts[usable].astype(str).tolist(), labels=labels, source=source)


def numeric_examples(frame, label_column, source):
    """Numeric feature columns and labels of a DataFrame.

    Every column except `label_column` is a feature, but for a leading unnamed
    column of row numbers (the index that pandas writes), which is dropped with
    a note: as a feature it could give the label away. Rows with a missing or
    infinite value are dropped with a count.

    Raises:
        UsageError: if the label column is missing or holds no classes, a
            feature column has no name or is not numeric, or no row is left.
    """
    label_column = label_column.strip()
    require_column(frame, label_column, "--label-column", source)
    features = drop_row_numbers(frame.drop(columns=[label_column]), source)
    # A separator at the end of every line makes an unnamed, empty last column.
    empty = [name for name in features.columns if is_unnamed(name) and features[name].isna().all()]
    features = features.drop(columns=empty)
    if features.shape[1] == 0:
        raise UsageError(f"{source} has only the label column. Add feature columns.")
    unnamed = [
        position for position, name in enumerate(frame.columns, start=1) if name in features and is_unnamed(name)
    ]
    if unnamed:
        raise UsageError(
            f"Column {unnamed[0]} of {source} has no name. Name every feature column in the header, "
            "or remove that column."
        )
    values = numeric_values(features, source, training=True)
    labels = frame[label_column]
    has_label = labels.notna() & labels.astype(str).str.strip().ne("")
    missing = np.isnan(values).any(axis=1)
    infinite = np.isinf(values).any(axis=1) & ~missing
    usable = has_label.to_numpy() & ~missing & ~infinite
    if not usable.any():
        raise UsageError(f"{source} has no row without missing or infinite values. Fill or drop them.")
    report_dropped(int((~has_label.to_numpy() | missing).sum()), "missing values", source)
    report_dropped(
        int((has_label.to_numpy() & infinite).sum()), "infinite values (or values beyond float32's range)", source
    )
    labels = label_strings(labels[usable])
    check_labels_are_classes(labels, label_column, frame.columns, source, text_flag=False)
    return Examples(
        inputs=values[usable],
        labels=labels,
        source=source,
        feature_names=[str(name) for name in features.columns],
    )


def drop_row_numbers(features, source):
    """`features` without a leading unnamed column of distinct whole numbers, with a note if there was one."""
    first = features.columns[0] if len(features.columns) else None
    if first is None or not is_unnamed(first):
        return features
    column = features[first]
    if pd.api.types.is_integer_dtype(column) and column.is_unique:
        print(
            f"kerastrain: left out the unnamed first column of {source}: it holds row numbers "
            "(an index that pandas writes), which must not become a feature",
            file=sys.stderr,
        )
        return features.drop(columns=[first])
    return features


def numeric_values(features, source, training=False):
    """The float32 values of numeric columns; missing cells are NaN.

    Values beyond float32's range become infinite (callers drop or refuse them).

    Args:
        features: a DataFrame of the feature columns.
        source: the file, for messages.
        training: whether the table is training data, which may be a text
            table read without its text column. Defaults to `False`.

    Raises:
        UsageError: naming the first column that holds a value that is not a
            number, and that value.
    """
    for name in features.columns:
        column = features[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        present = column[column.notna()]
        numbers = pd.to_numeric(present, errors="coerce")
        bad = present[numbers.isna()]
        if bad.empty:
            continue
        value = bad.iloc[0]
        if bad.astype(str).str.fullmatch(DECIMAL_COMMA.pattern).all():
            raise UsageError(
                f"Column {name!r} of {source} holds numbers with a decimal comma (like {value!r}). "
                "Save the file with decimal points."
            )
        if training and len(bad) > len(present) / 2:
            raise UsageError(
                f"{source} has non-numeric column {name!r} and no text column. Pass --text-column "
                "NAME for a text dataset, or give numeric feature columns only."
            )
        raise UsageError(
            f"Column {name!r} of {source} holds {value!r} in data row {bad.index[0] + 1}, which is not a number. "
            "Fix those cells, or leave them empty for a missing value."
        )
    values = features.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(over="ignore"):
        return values.astype(np.float32)


def check_labels_are_classes(labels, label_column, columns, source, text_flag):
    """Raises `UsageError` if most rows would be a class of their own (texts, ids or measurements)."""
    classes, counts = np.unique(labels, return_counts=True)
    alone = int((counts == 1).sum())
    if len(labels) >= 5 and alone > MOST_ROWS * len(labels):
        others = ", ".join(str(name) for name in list(columns)[:12])
        text_hint = " (and --text-column with the texts)" if text_flag else ""
        raise UsageError(
            f"--label-column {label_column!r} of {source} looks like text, not class labels: {len(classes)} "
            f"different values in {len(labels)} rows. Pass --label-column with the column of the classes"
            f"{text_hint}; columns: {others}."
        )


def label_strings(labels):
    """Class names as strings without surrounding spaces; whole-number floats lose their `.0`."""
    if pd.api.types.is_float_dtype(labels) and (labels % 1 == 0).all():
        labels = labels.astype(np.int64)
    return labels.astype(str).str.strip().to_numpy(dtype=object)


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
