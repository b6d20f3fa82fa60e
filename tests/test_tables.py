"""Data files as users have them: other separators, archives, odd headers, odd values, odd paths."""

import bz2
import gzip
import lzma
import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from kerastrain.data import load_examples, splits, tables
from kerastrain.errors import UsageError
from other_user import as_other_user, shared_folder

LABELS = ["spam", "ham", "ham"] * 4
TEXTS = [f"message, number {index}" for index in range(len(LABELS))]


def texts_table(separator=",", header=None):
    header = header or f"text{separator}label"
    rows = [f'"{text}"{separator}{label}' for text, label in zip(TEXTS, LABELS)]
    return "\n".join([header, *rows]) + "\n"


def refused(source, **keywords):
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(source), **keywords)
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


def assert_read_right(examples):
    assert examples.inputs == TEXTS
    assert examples.labels.tolist() == LABELS


# Separators and headers.


@pytest.mark.parametrize("separator", ["\t", ";", "|"])
@pytest.mark.parametrize("name", ["data.csv", "data.tsv", "data.txt"])
def test_tab_semicolon_and_pipe_separated_files_are_read(tmp_path, separator, name):
    path = tmp_path / name
    path.write_text(texts_table(separator).replace('"', ""))  # unquoted: the texts hold commas
    assert_read_right(load_examples(str(path)))


def test_the_separator_is_found_in_a_compressed_file(tmp_path):
    path = tmp_path / "data.tsv.gz"
    path.write_bytes(gzip.compress(texts_table("\t").encode()))
    assert_read_right(load_examples(str(path)))


def test_a_missing_column_of_a_tab_separated_file_lists_its_real_columns(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text(texts_table("\t"))
    message = refused(path, text_column="body")
    assert "(columns: text, label)" in message


def test_stray_spaces_in_the_header_and_after_separators(tmp_path):
    path = tmp_path / "spaces.csv"
    rows = [f'"{text}",  {label}' for text, label in zip(TEXTS, LABELS)]
    path.write_text("\n".join([" text ,  label ", *rows]) + "\n")
    assert_read_right(load_examples(str(path)))


def test_labels_with_surrounding_spaces_are_one_class(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("text,label\n" + "".join(f'"t {i}","{"ham " if i % 2 else " ham"}"\n' for i in range(4)) + "x,spam\n")
    assert sorted(set(load_examples(str(path)).labels)) == ["ham", "spam"]


def test_a_flag_with_stray_spaces_finds_its_column(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(texts_table())
    assert_read_right(load_examples(str(path), text_column=" text ", label_column="label "))


def test_byte_order_marks_are_read(tmp_path):
    utf8 = tmp_path / "utf8.csv"
    utf8.write_text(texts_table(), encoding="utf-8-sig")
    assert_read_right(load_examples(str(utf8)))
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text(texts_table(), encoding="utf-16")
    assert_read_right(load_examples(str(utf16)))


@pytest.mark.parametrize("header", ["text,label,label", "text,label, label", "label,text,label "])
def test_two_columns_of_the_same_name_are_refused(tmp_path, header):
    path = tmp_path / "twice.csv"
    path.write_text(header + "\n" + "a,b,c\n" * 6)
    message = refused(path)
    assert str(path) in message and "two columns named 'label'" in message


def test_rows_with_more_fields_than_the_header_are_refused_not_shifted(tmp_path):
    path = tmp_path / "unquoted.csv"
    path.write_text("text,label\n" + "".join(f"hello, world {i},ham\n" for i in range(6)))
    message = refused(path)
    assert str(path) in message and "more fields than its header" in message and "double quotes" in message


def test_a_single_long_row_names_the_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("text,label\nhello,ham\nbye,spam\nhi, there,ham\n")
    message = refused(path)
    assert "not a well-formed CSV" in message and "line 4" in message


# Archives and formats.


def test_a_zip_archive_of_one_csv_is_read(tmp_path):
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data.csv", texts_table())
        archive.writestr("__MACOSX/._data.csv", "junk")
    assert_read_right(load_examples(str(path)))


@pytest.mark.parametrize(
    "members, expected",
    [
        ({"a.csv": "x", "b.csv": "y"}, "zip archive of 2 files (a.csv, b.csv)"),
        ({}, "zip archive with no file"),
        ({"[Content_Types].xml": "x", "xl/workbook.xml": "y"}, "spreadsheet"),
    ],
)
def test_zip_archives_that_are_not_one_csv_are_refused(tmp_path, members, expected):
    path = tmp_path / ("book.xlsx" if "xl/workbook.xml" in members else "data.zip")
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    message = refused(path)
    assert str(path) in message and expected in message


@pytest.mark.parametrize("compress, name", [(gzip.compress, "data.csv"), (bz2.compress, "data.csv.bz2"), (lzma.compress, "data.csv.xz")])
def test_compressed_files_are_read_by_name_or_by_content(tmp_path, compress, name):
    path = tmp_path / name
    path.write_bytes(compress(texts_table().encode()))
    assert_read_right(load_examples(str(path)))


@pytest.mark.parametrize("name, kind", [("data.zip", "zip archive"), ("data.csv.bz2", "bz2 file"), ("data.csv.xz", "xz file")])
def test_a_plain_file_named_as_compressed_is_refused(tmp_path, name, kind):
    path = tmp_path / name
    path.write_text(texts_table())
    message = refused(path)
    assert f"is not a readable {kind} (corrupt or truncated)" in message


@pytest.mark.parametrize(
    "start, kind",
    [(b"PAR1\x15\x04", "a Parquet file"), (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\x00\x01\x02\x03", "binary data")],
)
def test_files_that_are_not_text_are_named(tmp_path, start, kind):
    path = tmp_path / "data.csv"
    path.write_bytes(start + bytes(range(256)))
    message = refused(path)
    assert str(path) in message and kind in message


def test_a_tar_archive_is_named(tmp_path):
    import tarfile

    inner = tmp_path / "data.csv"
    inner.write_text(texts_table())
    path = tmp_path / "data.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(inner, arcname="data.csv")
    assert "tar archive" in refused(path)


# Paths.


def test_a_folder_is_refused_with_a_file_in_it_suggested(tmp_path):
    (tmp_path / "train.csv").write_text(texts_table())
    message = refused(tmp_path)
    assert message == f"--data {tmp_path} is a folder, not a file. Pass one CSV file, like --data {tmp_path / 'train.csv'}."


def test_a_folder_named_like_a_dataset_does_not_hide_the_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sms").mkdir()
    assert len(load_examples("sms")) == 5574


def test_a_broken_link_names_its_target(tmp_path):
    path = tmp_path / "data.csv"
    path.symlink_to(tmp_path / "gone.csv")
    assert f"is a link to {tmp_path / 'gone.csv'}, which does not exist" in refused(path)


@pytest.mark.parametrize("source, expected", [("", "--data is empty"), ("/dev/null", "not a regular file")])
def test_empty_and_device_paths(source, expected):
    assert expected in refused(source)


@pytest.mark.parametrize("name", ["data.zip", "data.tsv", "data.xlsx"])
def test_missing_files_of_other_kinds_are_called_missing(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    assert "no such file" in refused(name)


def test_an_unreadable_file_is_named_for_a_user_without_root_rights():
    with shared_folder() as folder:
        readable = os.path.join(folder, "readable.csv")
        locked = os.path.join(folder, "locked.csv")
        for path in (readable, locked):
            with open(path, "w") as file:
                file.write(texts_table())
        os.chmod(readable, 0o644)
        os.chmod(locked, 0o000)
        assert as_other_user(lambda: load_examples(readable)) == ["ok", ""]
        kind, message = as_other_user(lambda: load_examples(locked))
    assert kind == "UsageError"
    assert message == f"--data {locked} cannot be read (permission denied). Make it readable (chmod +r) or pass a copy."


def test_a_file_in_a_folder_that_cannot_be_entered_is_named():
    with shared_folder() as folder:
        inner = os.path.join(folder, "private")
        os.mkdir(inner)
        path = os.path.join(inner, "data.csv")
        with open(path, "w") as file:
            file.write(texts_table())
        os.chmod(path, 0o644)
        os.chmod(inner, 0o700 if os.geteuid() == 0 else 0o000)
        kind, message = as_other_user(lambda: load_examples(path))
        os.chmod(inner, 0o755)
    assert kind == "UsageError"
    assert path in message and "permission denied on a folder above it" in message


# Numeric tables.


def numeric_table(path, text):
    path.write_text(text)
    return path


def test_a_leading_index_column_is_left_out_with_a_note(tmp_path, capsys):
    frame = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6], "label": [0, 0, 0, 1, 1, 1]})
    path = tmp_path / "indexed.csv"
    frame.to_csv(path)  # pandas writes its index as a first, unnamed column
    examples = load_examples(str(path), allow_numeric=True)
    assert examples.feature_names == ["x"]
    assert examples.inputs.shape == (6, 1)
    assert "left out the unnamed first column" in capsys.readouterr().err
    resaved = tmp_path / "resaved.csv"
    pd.read_csv(path).to_csv(resaved, index=False)  # the index now has a header: "Unnamed: 0"
    assert load_examples(str(resaved), allow_numeric=True).feature_names == ["x"]


def test_an_unnamed_feature_column_is_refused(tmp_path):
    path = numeric_table(tmp_path / "unnamed.csv", "label,x,,y\na,1,2,3\nb,4,5,6\n")
    message = refused(path, allow_numeric=True)
    assert message.startswith(f"Column 3 of {path} has no name")


def test_a_separator_at_every_line_end_is_not_a_column(tmp_path):
    path = numeric_table(tmp_path / "trailing.csv", "label,x,y,\na,1,2,\nb,3,4,\na,5,6,\n")
    assert load_examples(str(path), allow_numeric=True).feature_names == ["x", "y"]


def test_infinite_and_too_large_values_are_dropped_with_a_count(tmp_path, capsys):
    path = numeric_table(
        tmp_path / "infinite.csv", "label,x,y\na,1,2\nb,inf,3\nb,4,1e39\na,-Infinity,7\nb,7,8\na,1,1\nb,,1\n"
    )
    examples = load_examples(str(path), allow_numeric=True)
    assert np.isfinite(examples.inputs).all()
    np.testing.assert_array_equal(examples.inputs, [[1, 2], [7, 8], [1, 1]])
    stderr = capsys.readouterr().err
    assert "dropped 3 rows" in stderr and "infinite values" in stderr
    assert "dropped 1 rows" in stderr and "missing values" in stderr


def test_only_infinite_rows_are_refused(tmp_path):
    path = numeric_table(tmp_path / "infinite.csv", "label,x\na,inf\nb,-inf\n")
    assert "no row without missing or infinite values" in refused(path, allow_numeric=True)


def test_a_stray_word_in_a_numeric_column_is_named_with_its_row(tmp_path):
    path = numeric_table(tmp_path / "stray.csv", "label,x,y\na,1,2\nb,?,3\nb,4,5\na,6,7\n")
    message = refused(path, allow_numeric=True)
    assert message.startswith(f"Column 'x' of {path} holds '?' in data row 2, which is not a number.")


def test_decimal_commas_are_named(tmp_path):
    path = numeric_table(tmp_path / "european.csv", "label;x;y\na;1,5;2\nb;2,25;3\n")
    assert "decimal comma (like '1,5')" in refused(path, allow_numeric=True)


# Labels.


def test_a_label_column_of_texts_is_named(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(texts_table())
    message = refused(path, text_column="label", label_column="text")
    assert message.startswith(f"--label-column 'text' of {path} looks like text, not class labels: 12 different")
    assert "--text-column" in message and "columns: text, label" in message
    assert "looks like text" in refused(path, label_column="text")  # also the default --text-column


def test_the_same_column_for_texts_and_labels_is_refused(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(texts_table())
    assert "both name column 'label'" in refused(path, text_column="label")


def test_a_numeric_label_that_is_a_measurement_is_named(tmp_path):
    path = numeric_table(tmp_path / "regression.csv", "label,x\n" + "".join(f"{i * 0.37},{i}\n" for i in range(20)))
    assert "looks like text, not class labels" in refused(path, allow_numeric=True)


def test_many_small_classes_are_still_classes(tmp_path):
    path = numeric_table(tmp_path / "small.csv", "label,x\n3,0\n7,1\n3,2\n1,3\n7,4\n1,5\n")
    assert sorted(set(load_examples(str(path), allow_numeric=True).labels)) == ["1", "3", "7"]


# Batch size.


def test_a_batch_size_within_the_training_split_is_kept(capsys):
    assert splits.training_batch_size(64, 2, train_examples=128, source="data.csv") == 64
    assert capsys.readouterr().err == ""


def test_a_batch_size_above_the_training_split_is_cut_with_a_note(capsys):
    assert splits.training_batch_size(512, 1, train_examples=140, source="data.csv") == 140
    note = capsys.readouterr().err
    assert "--batch-size 512 is more than the 140 training examples of data.csv" in note
    assert splits.training_batch_size(64, 4, train_examples=100, source="data.csv") == 25
    assert "--accumulate-steps 4" in capsys.readouterr().err


def test_more_accumulation_steps_than_examples_is_refused():
    with pytest.raises(UsageError) as excinfo:
        splits.training_batch_size(8, 50, train_examples=30, source="data.csv")
    assert "--accumulate-steps 50 is more than the 30 training examples" in str(excinfo.value)


# All of it before TensorFlow.


def test_reading_every_kind_of_file_imports_no_tensorflow(tmp_path):
    tab = tmp_path / "data.tsv"
    tab.write_text(texts_table("\t"))
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as file:
        file.writestr("data.csv", texts_table())
    numbers = numeric_table(tmp_path / "numbers.csv", "label,x\na,1\nb,inf\na,2\nb,3\n")
    script = (
        "import sys\n"
        "from kerastrain.data import load_examples\n"
        f"load_examples({str(tab)!r}); load_examples({str(archive)!r})\n"
        f"load_examples({str(numbers)!r}, allow_numeric=True)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    "text, kind",
    [
        ('{"text": "hi", "label": "ham"}\n{"text": "yo", "label": "spam"}\n', "looks like JSON"),
        ('[{"text": "hi", "label": "ham"}]', "looks like JSON"),
        ("<!DOCTYPE html>\n<html><body>Not found</body></html>\n", "web page"),
        ("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n", "Git LFS pointer"),
    ],
)
def test_text_files_that_are_not_tables_are_named(tmp_path, text, kind):
    path = tmp_path / "data.csv"
    path.write_text(text)
    message = refused(path)
    assert str(path) in message and kind in message
