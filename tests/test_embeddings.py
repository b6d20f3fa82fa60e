"""Pretrained word vectors: both text formats, plain and gzipped, bad input, static and non-static."""

import gzip
import json

import joblib
import numpy as np
import pytest

from conftest import TINY_TEXTCNN, error_lines, run_module
from kerastrain.embeddings import load_embedding_matrix
from kerastrain.errors import UsageError
from kerastrain.text_vectorization import TextFeatures, TextVectorizer

VOCABULARY = {"free": 2, "prize": 3, "now": 4, "noon": 5}
VECTORS = {
    "free": [0.5, -1.0, 2.0],
    "zebra": [9.0, 9.0, 9.0],
    "prize": [0.25, 0.0, -0.75],
    "noon": [-2.0, 1.5, 0.125],
}


def write_vectors(path, vectors, header=True, gzipped=False, extra_lines=()):
    """Writes word vectors in the word2vec/fastText text format (header) or GloVe's (none)."""
    dimension = len(next(iter(vectors.values())))
    lines = [f"{len(vectors)} {dimension}"] if header else []
    lines += [f"{word} " + " ".join(str(value) for value in vector) for word, vector in vectors.items()]
    lines += list(extra_lines)
    text = "\n".join(lines) + "\n"
    if gzipped:
        with gzip.open(path, "wt", encoding="utf-8") as file:
            file.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("header", [True, False], ids=["word2vec", "glove"])
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_rows_land_on_the_vocabularys_ids(tmp_path, header, gzipped):
    path = write_vectors(tmp_path / "vectors.txt", VECTORS, header=header, gzipped=gzipped)
    loaded = load_embedding_matrix(str(path), VOCABULARY, 3)
    assert loaded.matrix.shape == (6, 3) and loaded.matrix.dtype == np.float32
    for word in ("free", "prize", "noon"):
        np.testing.assert_array_equal(loaded.matrix[VOCABULARY[word]], VECTORS[word])
    assert loaded.words_found == 3 and loaded.words == 4
    assert loaded.describe() == "3 of 4 words had a vector in vectors.txt"
    np.testing.assert_array_equal(loaded.matrix[0], np.zeros(3))  # padding


def test_words_without_a_vector_get_small_random_vectors_fixed_by_the_seed(tmp_path):
    path = write_vectors(tmp_path / "vectors.vec", VECTORS)
    first = load_embedding_matrix(str(path), VOCABULARY, 3, seed=7).matrix
    again = load_embedding_matrix(str(path), VOCABULARY, 3, seed=7).matrix
    other = load_embedding_matrix(str(path), VOCABULARY, 3, seed=8).matrix
    missing = [VOCABULARY["now"], 1]  # a word without a vector, and the unknown id
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[missing], other[missing])
    assert np.all(first[missing] != 0.0)
    found = first[[VOCABULARY[word] for word in ("free", "prize", "noon")]]
    assert np.abs(first[missing]).max() <= np.sqrt(3.0 * found.var()) + 1e-6


def test_a_lowercased_vocabulary_takes_cased_vectors_and_prefers_exact_matches(tmp_path):
    vectors = {"Free": [1.0, 1.0], "NOW": [2.0, 2.0], "now": [3.0, 3.0], "Prize": [4.0, 4.0], "prize": [5.0, 5.0]}
    path = write_vectors(tmp_path / "cased.vec", vectors)
    loaded = load_embedding_matrix(str(path), VOCABULARY, 2, match_lowercase=True)
    np.testing.assert_array_equal(loaded.matrix[VOCABULARY["free"]], [1.0, 1.0])
    np.testing.assert_array_equal(loaded.matrix[VOCABULARY["now"]], [3.0, 3.0])
    np.testing.assert_array_equal(loaded.matrix[VOCABULARY["prize"]], [5.0, 5.0])
    assert loaded.words_found == 3
    assert load_embedding_matrix(str(path), VOCABULARY, 2).words_found == 2  # exact matches only


def test_glove_tokens_with_spaces_are_skipped(tmp_path):
    path = write_vectors(tmp_path / "glove.txt", VECTORS, header=False, extra_lines=[". . . 1.0 2.0 3.0"])
    assert load_embedding_matrix(str(path), VOCABULARY, 3).words_found == 3


def usage_error(path, vocabulary=VOCABULARY, dimension=3):
    with pytest.raises(UsageError) as excinfo:
        load_embedding_matrix(str(path), vocabulary, dimension)
    message = str(excinfo.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_file_is_refused(tmp_path):
    assert "no such file" in usage_error(tmp_path / "absent.vec")


@pytest.mark.parametrize("content", ["", "\n\n", "4 3\n"], ids=["empty", "blank", "header only"])
def test_a_file_without_vectors_is_refused(tmp_path, content):
    path = tmp_path / "empty.vec"
    path.write_text(content)
    assert "holds no vectors" in usage_error(path)


def test_a_malformed_line_is_refused_with_its_number(tmp_path):
    path = write_vectors(tmp_path / "bad.txt", VECTORS, header=False, extra_lines=["now 1.0 oops 3.0"])
    message = usage_error(path)
    assert "line 5" in message and "not a number" in message


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e39"])
def test_a_vector_that_is_not_finite_is_refused_with_its_line(tmp_path, value):
    path = write_vectors(tmp_path / "bad.txt", VECTORS, header=False, extra_lines=[f"now 1.0 {value} 3.0"])
    message = usage_error(path)
    assert "line 5" in message and "not a finite" in message


def test_a_line_without_values_is_refused(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("free\nprize\n")
    assert "line 1" in usage_error(path)


def test_a_dimension_that_changes_is_refused(tmp_path):
    path = write_vectors(tmp_path / "mixed.vec", VECTORS, extra_lines=["now 1.0 2.0"])
    message = usage_error(path)
    assert "line 6 has 2 values, not the file's 3" in message


def test_a_longer_line_of_numbers_is_a_dimension_change_not_a_token_with_spaces(tmp_path):
    path = write_vectors(tmp_path / "mixed.vec", VECTORS, header=False, extra_lines=["now 1.0 2.0 3.0 4.0"])
    assert "line 5 has 4 values" in usage_error(path)


def test_a_header_that_disagrees_with_the_vectors_is_refused(tmp_path):
    path = tmp_path / "header.vec"
    path.write_text("4 3\nfree 1.0 2.0\n")
    assert "line 2 has 2 values, not the file's 3" in usage_error(path)


def test_no_overlap_with_the_vocabulary_is_refused(tmp_path):
    path = write_vectors(tmp_path / "other.vec", {"zebra": [1.0, 2.0, 3.0], "giraffe": [0.0, 1.0, 0.0]})
    assert "no vector for any of the 4 words" in usage_error(path)


def test_an_embedding_dim_other_than_the_files_is_refused_with_the_fix(tmp_path):
    for header in (True, False):
        path = write_vectors(tmp_path / f"vectors{header}.vec", VECTORS, header=header)
        assert "holds 3-dimensional vectors, but --embedding-dim is 128. Pass --embedding-dim 3." in usage_error(
            path, dimension=128
        )


def test_a_binary_word2vec_file_is_refused_with_the_conversion(tmp_path):
    path = tmp_path / "GoogleNews-vectors-negative300.bin"
    path.write_bytes(b"3 2\nfree \xff\xfe\x00\x80\x3f\x00\x00\x00\x40\n")
    assert "convert a binary word2vec .bin file to text" in usage_error(path, dimension=2)


def test_a_truncated_gzip_file_is_refused(tmp_path):
    path = write_vectors(tmp_path / "vectors.txt.gz", VECTORS, gzipped=True)
    path.write_bytes(path.read_bytes()[:-12])
    assert "cannot read it" in usage_error(path)


# The fitted text features carry the vectors to the model builder, but never into their pickle.


def test_text_features_describe_the_vectors_and_do_not_pickle_them(tmp_path):
    texts = ["free prize now", "free noon now", "prize at noon"]
    features = TextFeatures({"tokens": TextVectorizer()}).fit(texts)
    path = write_vectors(tmp_path / "vectors.vec", VECTORS)
    tokens = features.vectorizers["tokens"]
    features.set_embedding_matrix(load_embedding_matrix(str(path), tokens.vocabulary_, 3))
    assert features.embedding_matrix_.shape == (tokens.vocabulary_size, 3)
    assert features.describe().endswith("; 3 of 5 words had a vector in vectors.vec")
    joblib.dump(features, tmp_path / "features.joblib")
    loaded = joblib.load(tmp_path / "features.joblib")
    assert not hasattr(loaded, "embedding_matrix_")
    assert loaded.describe() == features.describe()
    assert hasattr(features, "embedding_matrix_")  # pickling left the live object alone


# Static (fixed vectors) and non-static (fine-tuned) embeddings in the model.


@pytest.mark.parametrize("trainable", [True, False], ids=["non-static", "static"])
def test_embeddings_change_in_a_training_step_only_when_trainable(trainable):
    from kerastrain.backend import keras
    from kerastrain.models import build_textcnn

    keras.mixed_precision.set_global_policy("float32")
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(30, 4)).astype(np.float32)
    matrix[0] = 0.0
    model = build_textcnn(
        30, 8, 2, embedding_dim=4, filters=2, embedding_matrix=matrix, embedding_trainable=trainable
    )
    embedding = model.get_layer("embedding")
    np.testing.assert_array_equal(embedding.get_weights()[0], matrix)
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="sparse_categorical_crossentropy")
    tokens = rng.integers(1, 30, size=(16, 8)).astype("int32")
    model.train_on_batch(tokens, rng.integers(0, 2, size=16))
    changed = not np.array_equal(embedding.get_weights()[0], matrix)
    assert changed == trainable
    assert not np.array_equal(model.get_layer("logits").get_weights()[0], 0.0)


def test_an_embedding_matrix_of_the_wrong_shape_raises():
    from kerastrain.models import build_textcnn

    with pytest.raises(ValueError, match=r"embedding_matrix of shape \(30, 4\)"):
        build_textcnn(30, 8, 2, embedding_dim=4, filters=2, embedding_matrix=np.zeros((30, 5)))


# End to end, as a user runs it.


def sms_vectors(path, dimension=8, header=True):
    words = ["i", "you", "to", "the", "a", "call", "free", "now", "and", "u", "zebraish"]
    rng = np.random.default_rng(1)
    return write_vectors(path, {word: rng.normal(size=dimension).round(4).tolist() for word in words}, header=header)


@pytest.mark.slow
@pytest.mark.parametrize("trainable", ["--embeddings-trainable", "--no-embeddings-trainable"])
def test_a_run_with_pretrained_vectors_trains_end_to_end(tmp_path, sms_sample_csv, trainable):
    vectors = sms_vectors(tmp_path / "sms.vec")
    run_dir = tmp_path / "run"
    result = run_module(
        "kerastrain.recipes.textcnn", "--data", sms_sample_csv, *TINY_TEXTCNN, "--embedding-dim", "8",
        "--embeddings", vectors, trainable, "--epochs", "1", "--verbose", "0", "--output-dir", run_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    first_line = result.stdout.splitlines()[0]
    assert "10 of " in first_line and " words had a vector in sms.vec" in first_line
    config = json.loads((run_dir / "config.json").read_text())
    config = config.get("config", config)
    assert config["embeddings"] == str(vectors)
    assert config["embeddings_trainable"] == (trainable == "--embeddings-trainable")
    preprocessor = joblib.load(run_dir / "preprocessor.joblib")
    assert not hasattr(preprocessor, "embedding_matrix_")
    assert (run_dir / "metrics.json").exists()


def test_a_run_with_vectors_of_another_dimension_exits_2_with_one_line(tmp_path, sms_sample_csv):
    vectors = sms_vectors(tmp_path / "sms.txt", dimension=5, header=False)
    result = run_module(
        "kerastrain.recipes.textcnn", "--data", sms_sample_csv, *TINY_TEXTCNN, "--embeddings", vectors,
        "--output-dir", tmp_path / "run",
    )  # fmt: skip
    assert result.returncode == 2
    assert error_lines(result) == [
        f"error: --embeddings {vectors} holds 5-dimensional vectors, but --embedding-dim is 16. "
        "Pass --embedding-dim 5."
    ]
