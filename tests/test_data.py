"""Data loading (CSV, bundled, online offline), stratified splits and label encoding."""

import collections
import gzip
import socket
import time

import numpy as np
import pytest

from kerastrain.data import bundled, load_examples, splits, tables
from kerastrain.data.examples import Examples
from kerastrain.errors import UsageError


def write_csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def write_gzip_csv(path, text):
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    return path


def one_line_message(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


TEXT_CSV = "text,label\nfree prize now,spam\nsee you at noon,ham\nwin cash,spam\nlunch today?,ham\n"


# Text CSVs.


def test_text_csv_loads(tmp_path):
    examples = load_examples(str(write_csv(tmp_path / "texts.csv", TEXT_CSV)))
    assert examples.inputs == ["free prize now", "see you at noon", "win cash", "lunch today?"]
    assert examples.labels.tolist() == ["spam", "ham", "spam", "ham"]
    assert examples.labels.dtype == object
    assert examples.is_text
    assert examples.feature_names is None
    assert len(examples) == 4
    assert examples.source.endswith("texts.csv")


def test_gzip_text_csv_loads_like_plain(tmp_path):
    plain = load_examples(str(write_csv(tmp_path / "texts.csv", TEXT_CSV)))
    zipped = load_examples(str(write_gzip_csv(tmp_path / "texts.csv.gz", TEXT_CSV)))
    assert zipped.inputs == plain.inputs
    assert zipped.labels.tolist() == plain.labels.tolist()


def test_text_inputs_are_plain_python_strings(tmp_path):
    examples = load_examples(str(write_csv(tmp_path / "texts.csv", TEXT_CSV)))
    assert isinstance(examples.inputs, list)
    assert all(type(text) is str for text in examples.inputs)
    assert all(type(label) is str for label in examples.labels)


def test_custom_column_names(tmp_path):
    path = write_csv(tmp_path / "custom.csv", "id,message,category\n1,hello there,a\n2,good bye,b\n3,hi,a\n")
    examples = load_examples(str(path), text_column="message", label_column="category")
    assert examples.inputs == ["hello there", "good bye", "hi"]
    assert examples.labels.tolist() == ["a", "b", "a"]


def test_integer_labels_of_a_text_csv_become_strings(tmp_path):
    path = write_csv(tmp_path / "ints.csv", "text,label\nhello,0\nbye,1\nhi,0\n")
    assert load_examples(str(path)).labels.tolist() == ["0", "1", "0"]


def test_missing_text_column(tmp_path):
    path = write_csv(tmp_path / "texts.csv", "message,label\nhello,a\nbye,b\n")
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    message = one_line_message(excinfo)
    assert "--text-column" in message
    assert "'text'" in message
    assert "message, label" in message


def test_missing_label_column(tmp_path):
    path = write_csv(tmp_path / "texts.csv", "text,category\nhello,a\nbye,b\n")
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    message = one_line_message(excinfo)
    assert "--label-column" in message
    assert "'label'" in message
    assert "text, category" in message


def test_empty_file(tmp_path):
    path = write_csv(tmp_path / "empty.csv", "")
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    assert "is empty" in one_line_message(excinfo)


def test_empty_gzip_file(tmp_path):
    path = write_gzip_csv(tmp_path / "empty.csv.gz", "")
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    assert "is empty" in one_line_message(excinfo)


def test_header_only_file(tmp_path):
    path = write_csv(tmp_path / "header.csv", "text,label\n")
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    assert "no rows" in one_line_message(excinfo)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.csv"
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    message = one_line_message(excinfo)
    assert str(path) in message
    assert "no such file" in message


def test_blank_and_missing_rows_are_dropped_with_a_count(tmp_path, capsys):
    path = write_csv(
        tmp_path / "holes.csv",
        'text,label\nhello,a\n,b\n"   ",b\nbye,\nhi,b\nyo,a\n',
    )
    examples = load_examples(str(path))
    assert examples.inputs == ["hello", "hi", "yo"]
    assert examples.labels.tolist() == ["a", "b", "a"]
    stderr = capsys.readouterr().err
    assert "dropped 3 rows" in stderr
    assert "holes.csv" in stderr


def test_nothing_printed_when_nothing_is_dropped(tmp_path, capsys):
    load_examples(str(write_csv(tmp_path / "texts.csv", TEXT_CSV)))
    assert "dropped" not in capsys.readouterr().err


def test_error_when_no_row_is_left(tmp_path):
    path = write_csv(tmp_path / "blank.csv", 'text,label\n,a\n"  ",b\n')
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    message = one_line_message(excinfo)
    assert "no row with both a text" in message
    assert "--text-column" in message


def test_single_class(tmp_path):
    path = write_csv(tmp_path / "one.csv", "text,label\nhello,a\nbye,a\nhi,a\n")
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    message = one_line_message(excinfo)
    assert "single class" in message
    assert "'a'" in message


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "corrupt.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    message = one_line_message(excinfo)
    assert "gzip" in message
    assert str(path) in message


def test_plain_text_named_gz(tmp_path):
    path = write_csv(tmp_path / "plain.csv.gz", TEXT_CSV)
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    assert "gzip" in one_line_message(excinfo)


@pytest.mark.parametrize("keep", [0.5, 0.9, 30])
def test_truncated_gzip(tmp_path, keep):
    data = gzip.compress(("text,label\n" + "hello there,a\nbye now,b\n" * 2000).encode())
    size = keep if isinstance(keep, int) else int(len(data) * keep)
    path = tmp_path / "truncated.csv.gz"
    path.write_bytes(data[:size])
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    assert "corrupt or truncated" in one_line_message(excinfo)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\xe9 cr\xe8me,a\nbye,b\n".encode("latin-1"))
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    assert "UTF-8" in one_line_message(excinfo)


def test_text_csv_without_text_column_is_not_read_as_numeric_by_default(tmp_path):
    path = write_csv(tmp_path / "pixels.csv", "label,pixel1,pixel2\n0,1,2\n1,3,4\n")
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path))
    assert "--text-column" in one_line_message(excinfo)


# Numeric CSVs.

MNIST_LAYOUT = "label,pixel1,pixel2,pixel3\n3,0,128,255\n7,12,0,1\n3,5,5,5\n1,0,0,0\n"


def test_numeric_csv_in_the_mnist_layout(tmp_path):
    path = write_csv(tmp_path / "mnist_train.csv", MNIST_LAYOUT)
    examples = load_examples(str(path), allow_numeric=True)
    assert not examples.is_text
    assert examples.inputs.dtype == np.float32
    assert examples.inputs.shape == (4, 3)
    np.testing.assert_array_equal(examples.inputs[0], [0, 128, 255])
    assert examples.labels.tolist() == ["3", "7", "3", "1"]
    assert examples.feature_names == ["pixel1", "pixel2", "pixel3"]


def test_gzip_numeric_csv(tmp_path):
    path = write_gzip_csv(tmp_path / "mnist_train.csv.gz", MNIST_LAYOUT)
    examples = load_examples(str(path), allow_numeric=True)
    assert examples.inputs.shape == (4, 3)


def test_whole_number_float_labels_lose_their_fraction(tmp_path):
    path = write_csv(tmp_path / "floats.csv", "label,x\n3.0,1\n7.0,2\n3.0,3\n")
    assert load_examples(str(path), allow_numeric=True).labels.tolist() == ["3", "7", "3"]


def test_integer_labels_with_a_missing_row_are_not_3_point_0(tmp_path, capsys):
    path = write_csv(tmp_path / "holes.csv", "label,x\n3,1\n,2\n7,3\n3,4\n")
    examples = load_examples(str(path), allow_numeric=True)
    assert examples.labels.tolist() == ["3", "7", "3"]
    assert "dropped 1 rows" in capsys.readouterr().err


def test_rows_that_repeat_the_header_are_dropped(tmp_path, capsys):
    first = "review,stars\n" + "good stuff,pos\nbad stuff,neg\n" * 3
    path = write_csv(tmp_path / "joined.csv", first * 3)  # as cat a.csv b.csv c.csv writes them
    examples = load_examples(str(path), "review", "stars")
    assert sorted(set(examples.labels)) == ["neg", "pos"] and len(examples) == 18
    assert "dropped 2 rows" in capsys.readouterr().err


def test_numeric_rows_with_missing_values_are_dropped(tmp_path, capsys):
    path = write_csv(tmp_path / "holes.csv", "label,x,y\na,1,2\nb,,3\nb,4,5\na,6,\nb,7,8\n")
    examples = load_examples(str(path), allow_numeric=True)
    np.testing.assert_array_equal(examples.inputs, [[1, 2], [4, 5], [7, 8]])
    assert examples.labels.tolist() == ["a", "b", "b"]
    assert "dropped 2 rows" in capsys.readouterr().err


def test_non_numeric_column_in_a_numeric_table(tmp_path):
    path = write_csv(tmp_path / "mixed.csv", "label,x,colour\na,1,red\nb,2,blue\n")
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path), allow_numeric=True)
    message = one_line_message(excinfo)
    assert "'colour'" in message
    assert "--text-column" in message


def test_numeric_table_without_its_label_column(tmp_path):
    path = write_csv(tmp_path / "nolabel.csv", "digit,x\n1,1\n2,2\n")
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path), allow_numeric=True)
    message = one_line_message(excinfo)
    assert "--label-column" in message
    assert "digit, x" in message


def test_numeric_table_with_only_a_label_column(tmp_path):
    path = write_csv(tmp_path / "labels.csv", "label\n1\n2\n")
    with pytest.raises(UsageError) as excinfo:
        load_examples(str(path), allow_numeric=True)
    assert "only the label column" in one_line_message(excinfo)


def test_text_column_wins_over_numeric_reading(tmp_path):
    path = write_csv(tmp_path / "texts.csv", TEXT_CSV)
    examples = load_examples(str(path), allow_numeric=True)
    assert examples.is_text
    assert examples.inputs[0] == "free prize now"


def test_label_strings_helper_keeps_real_fractions():
    import pandas as pd

    assert tables.label_strings(pd.Series([0.5, 1.0])).tolist() == ["0.5", "1.0"]
    assert tables.label_strings(pd.Series([1.0, 2.0])).tolist() == ["1", "2"]


# Names and paths.


def test_unknown_dataset_name():
    with pytest.raises(UsageError) as excinfo:
        load_examples("no_such_dataset")
    message = one_line_message(excinfo)
    assert "'no_such_dataset'" in message
    assert "neither a file nor a dataset name" in message
    assert "sms" in message and "imdb" in message and "20newsgroups" in message
    assert "digits" not in message


def test_unknown_dataset_name_lists_numeric_names_when_allowed():
    with pytest.raises(UsageError) as excinfo:
        load_examples("no_such_dataset", allow_numeric=True)
    message = one_line_message(excinfo)
    assert "digits" in message and "mnist" in message


def test_numeric_dataset_names_need_allow_numeric():
    with pytest.raises(UsageError) as excinfo:
        load_examples("digits")
    assert "neither a file nor a dataset name" in one_line_message(excinfo)


@pytest.mark.parametrize("name", ["missing.csv", "missing.csv.gz", "folder/missing"])
def test_path_like_sources_report_a_missing_file(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as excinfo:
        load_examples(name)
    message = one_line_message(excinfo)
    assert "no such file" in message
    assert name in message


def test_a_local_file_named_like_a_dataset_is_read_as_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "sms", "text,label\nmine,a\nyours,b\n")
    examples = load_examples("sms")
    assert examples.inputs == ["mine", "yours"]


# Bundled datasets.


def test_bundled_sms():
    examples = load_examples("sms")
    assert len(examples) == 5574
    assert len(examples.inputs) == 5574
    assert set(examples.labels) == {"ham", "spam"}
    counts = collections.Counter(examples.labels)
    assert counts == {"ham": 4827, "spam": 747}
    assert all(isinstance(text, str) and text.strip() for text in examples.inputs)
    assert examples.source == "sms"
    assert bundled.sms_spam_path().name == "sms_spam.csv.gz"


def test_bundled_digits():
    examples = load_examples("digits", allow_numeric=True)
    assert examples.inputs.shape == (1797, 64)
    assert examples.inputs.dtype == np.float32
    assert len(examples.feature_names) == 64
    assert sorted(set(examples.labels)) == [str(digit) for digit in range(10)]
    assert examples.labels.dtype == object


# Online loaders, with the network and the caches cut off.


@pytest.fixture
def offline(monkeypatch, tmp_path):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    # tf_keras' get_file caches in ~/.keras (falling back to /tmp/.keras when
    # that is not writable); scikit-learn in SCIKIT_LEARN_DATA.
    home = tmp_path / "home"
    (home / ".keras").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "scikit_learn_data"))
    # scikit-learn retries downloads with a one-second sleep between tries.
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    return attempts


@pytest.mark.filterwarnings("ignore:Retry downloading")
@pytest.mark.parametrize(
    "name, allow_numeric",
    [("imdb", False), ("mnist", True), ("20newsgroups", False)],
)
def test_online_loaders_fail_offline_with_one_line(offline, tmp_path, name, allow_numeric):
    with pytest.raises(UsageError) as excinfo:
        load_examples(name, allow_numeric=allow_numeric)
    message = one_line_message(excinfo)
    assert message.startswith(f"--data {name}:")
    assert "--data PATH" in message
    assert "network disabled in tests" in message
    assert offline, "the loader never tried the (disabled) network"
    caches = [tmp_path / "home" / ".keras" / "datasets", tmp_path / "scikit_learn_data"]
    downloaded = [path for cache in caches for path in cache.rglob("*") if path.is_file()]
    assert downloaded == []


# Splits.


def make_examples(counts, numeric=False):
    labels = np.asarray([name for name, count in counts.items() for _ in range(count)], dtype=object)
    if numeric:
        inputs = np.arange(len(labels), dtype=np.float32).reshape(-1, 1)
        return Examples(inputs, labels, "numbers", feature_names=["index"])
    return Examples([f"text {index}" for index in range(len(labels))], labels, "texts")


def shares(labels):
    counts = collections.Counter(labels)
    return {name: count / len(labels) for name, count in counts.items()}


def test_split_is_stratified():
    examples = make_examples({"a": 120, "b": 60, "c": 20})
    split = splits.stratified_split(examples, 0.1, 0.2, seed=0)
    overall = shares(examples.labels)
    for part in (split.train, split.validation, split.test):
        part_shares = shares(part.labels)
        assert set(part_shares) == set(overall)
        for name, share in overall.items():
            assert part_shares[name] == pytest.approx(share, abs=0.05)


def test_split_sizes_follow_the_fractions():
    split = splits.stratified_split(make_examples({"a": 100, "b": 100}), 0.1, 0.2, seed=0)
    assert len(split.test) == 40
    assert len(split.validation) == 20
    assert len(split.train) == 140


def test_split_parts_are_disjoint_and_complete():
    examples = make_examples({"a": 50, "b": 30, "c": 20})
    split = splits.stratified_split(examples, 0.1, 0.2, seed=1)
    parts = [set(split.train.inputs), set(split.validation.inputs), set(split.test.inputs)]
    assert parts[0].isdisjoint(parts[1]) and parts[0].isdisjoint(parts[2]) and parts[1].isdisjoint(parts[2])
    assert parts[0] | parts[1] | parts[2] == set(examples.inputs)
    assert sum(len(part) for part in parts) == len(examples)


def test_split_keeps_inputs_and_labels_together():
    examples = make_examples({"a": 30, "b": 30})
    label_of = dict(zip(examples.inputs, examples.labels))
    split = splits.stratified_split(examples, 0.1, 0.2, seed=0)
    for part in (split.train, split.validation, split.test):
        assert all(label_of[text] == label for text, label in zip(part.inputs, part.labels))


def test_numeric_split_keeps_rows_with_labels():
    examples = make_examples({"a": 30, "b": 30}, numeric=True)
    split = splits.stratified_split(examples, 0.1, 0.2, seed=0)
    for part in (split.train, split.validation, split.test):
        assert part.inputs.dtype == np.float32
        assert part.feature_names == ["index"]
        rows = part.inputs[:, 0].astype(int)
        np.testing.assert_array_equal(part.labels, examples.labels[rows])


def test_split_is_deterministic_for_a_seed():
    examples = make_examples({"a": 60, "b": 40})
    first = splits.stratified_split(examples, 0.1, 0.2, seed=7)
    second = splits.stratified_split(examples, 0.1, 0.2, seed=7)
    assert first.train.inputs == second.train.inputs
    assert first.validation.inputs == second.validation.inputs
    assert first.test.inputs == second.test.inputs


def test_split_differs_for_another_seed():
    examples = make_examples({"a": 60, "b": 40})
    first = splits.stratified_split(examples, 0.1, 0.2, seed=0)
    second = splits.stratified_split(examples, 0.1, 0.2, seed=1)
    assert set(first.test.inputs) != set(second.test.inputs)


def test_max_examples_subsamples_with_stratification():
    examples = make_examples({"a": 300, "b": 100})
    split = splits.stratified_split(examples, 0.1, 0.2, seed=0, max_examples=80)
    parts = (split.train, split.validation, split.test)
    assert sum(len(part) for part in parts) == 80
    labels = np.concatenate([part.labels for part in parts])
    assert shares(labels)["b"] == pytest.approx(0.25, abs=0.02)
    assert len(set().union(*(part.inputs for part in parts))) == 80


def test_max_examples_larger_than_the_data_uses_all():
    examples = make_examples({"a": 30, "b": 30})
    split = splits.stratified_split(examples, 0.1, 0.2, seed=0, max_examples=1000)
    assert len(split.train) + len(split.validation) + len(split.test) == 60


def test_too_few_examples_of_a_class():
    examples = make_examples({"a": 30, "rare": 2})
    with pytest.raises(UsageError) as excinfo:
        splits.stratified_split(examples, 0.1, 0.2, seed=0)
    message = one_line_message(excinfo)
    assert "'rare'" in message
    assert "at least 3" in message


def test_max_examples_too_small_to_stratify():
    examples = make_examples({"a": 30, "b": 30, "c": 30})
    with pytest.raises(UsageError) as excinfo:
        splits.stratified_split(examples, 0.1, 0.2, seed=0, max_examples=5)
    message = one_line_message(excinfo)
    assert "--max-examples" in message


def test_encode_labels():
    examples = make_examples({"spam": 20, "ham": 40, "eggs": 10})
    split = splits.stratified_split(examples, 0.1, 0.2, seed=0)
    class_names, train, validation, test = splits.encode_labels(split)
    assert class_names == ["eggs", "ham", "spam"]
    for ids, part in ((train, split.train), (validation, split.validation), (test, split.test)):
        assert ids.dtype == np.int32
        assert len(ids) == len(part)
        assert [class_names[index] for index in ids] == part.labels.tolist()


def test_join_puts_the_second_part_after_the_first():
    texts = splits.join(
        Examples(["a", "b"], np.array(["x", "y"]), "first.csv"), Examples(["c"], np.array(["x"]), "second.csv")
    )
    assert texts.inputs == ["a", "b", "c"] and list(texts.labels) == ["x", "y", "x"]
    assert texts.source == "first.csv" and texts.is_text
    numbers = splits.join(
        Examples(np.zeros((2, 3), np.float32), np.array(["x", "y"]), "a.csv", ["p", "q", "r"]),
        Examples(np.ones((1, 3), np.float32), np.array(["y"]), "a.csv", ["p", "q", "r"]),
    )
    assert numbers.inputs.shape == (3, 3) and numbers.inputs[2].tolist() == [1, 1, 1]
    assert numbers.feature_names == ["p", "q", "r"] and list(numbers.labels) == ["x", "y", "y"]
