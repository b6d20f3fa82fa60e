"""Pretrained word vectors for a vocabulary, read from a text file.

Reads the two text formats that published vectors come in: word2vec's and
fastText's (`.vec`: a first line `count dimension`, then `word v1 v2 ...`) and
GloVe's (the same lines without the first one), plain or gzipped. The file is
streamed: only the vocabulary's rows are kept, so a 2-million-word file costs
the memory of the vocabulary, not of the file. Word2vec's binary `.bin` format
is not read; convert it to text first (gensim's `KeyedVectors.save_word2vec_format`
with `binary=False`).

Like the text vectorizer, this module does not import TensorFlow.
"""

import dataclasses
import gzip
import os

import numpy as np

from kerastrain.errors import UsageError

GZIP_MAGIC = b"\x1f\x8b"


@dataclasses.dataclass
class EmbeddingMatrix:
    """Word vectors laid out by a vocabulary's ids.

    Attributes:
        matrix: float32 array `(rows, dimension)`; row `id` is the vector of the
            word with that id, the padding row is zeros, and words without a
            vector in the file have small random vectors.
        words_found: how many of the vocabulary's words had a vector.
        words: how many words the vocabulary has.
        path: the file the vectors came from.
    """

    matrix: np.ndarray
    words_found: int
    words: int
    path: str

    def describe(self):
        """A line for the run's log, such as `"12,804 of 20,000 words had a vector in glove.6B.100d.txt"`."""
        return f"{self.words_found:,} of {self.words:,} words had a vector in {os.path.basename(self.path)}"


def open_text(path):
    """Opens a plain or gzipped text file for reading, telling them apart by their first bytes."""
    with open(path, "rb") as file:
        gzipped = file.read(2) == GZIP_MAGIC
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, "rt", encoding="utf-8", newline="\n")


def is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_header(line):
    """The dimension a word2vec/fastText first line `count dimension` declares, or `None`."""
    parts = line.split()
    if len(parts) == 2 and all(part.isdigit() for part in parts):
        return int(parts[1])
    return None


def load_embedding_matrix(path, vocabulary, dimension, seed=0, match_lowercase=False, padding_id=0):
    """Reads the vectors of a vocabulary's words from a word-vector text file.

    Args:
        path: a word2vec/fastText (`.vec`) or GloVe text file, gzipped or not.
        vocabulary: a dict from word to row id, such as a fitted
            `TextVectorizer`'s `vocabulary_`. The matrix has one row per id up to
            the largest; ids without a word (the unknown id, say) get random
            vectors.
        dimension: the expected size of the vectors (the model's
            `--embedding-dim`); a file of another size is refused.
        seed: seed of the random vectors of words without one in the file.
            Defaults to `0`.
        match_lowercase: whether the vocabulary is lowercased: then a word of
            the file that matches no vocabulary word as it is matches by its
            lowercase form (the first such line wins; files list frequent
            words first), so that cased vectors such as fastText's serve a
            lowercased vocabulary. Defaults to `False`.
        padding_id: the row that stays zeros. Defaults to `0`.

    Returns:
        An `EmbeddingMatrix`. The random vectors are uniform in `[-a, a]`, with
        `a` chosen so that they have the variance of the file's vectors (as Kim
        2014 initializes unknown words).

    Raises:
        UsageError: one line naming the file and the fix, when the file is
            missing, empty, binary, has a malformed line or a dimension that
            changes, holds vectors of another size than `dimension`, or has no
            vector for any word of the vocabulary.

    Example:

    ```python
    loaded = load_embedding_matrix("glove.6B.100d.txt.gz", vectorizer.vocabulary_, 100)
    print(loaded.describe())  # 7,406 of 8,211 words had a vector in glove.6B.100d.txt.gz
    ```
    """
    flag = f"--embeddings {path}"
    if not os.path.isfile(path):
        raise UsageError(f"{flag}: no such file. Pass a word-vector text file (.vec, .txt or .txt.gz).")
    if not vocabulary:
        raise ValueError("Expected a vocabulary with at least one word. Received: an empty one")
    rows = max(vocabulary.values()) + 1
    matrix = np.zeros((rows, dimension), np.float32)
    found = np.zeros(rows, bool)
    # Rows matched only by their lowercase form; an exact match later in the file replaces them.
    matched_by_lowercase = np.zeros(rows, bool)
    file_dimension = None
    line_number = 0
    vectors_read = 0
    try:
        with open_text(path) as lines:
            for line_number, line in enumerate(lines, start=1):
                line = line.rstrip()
                if not line:
                    continue
                if file_dimension is None:
                    file_dimension = read_header(line) if line_number == 1 else None
                    if file_dimension is not None:
                        check_dimension(flag, file_dimension, dimension)
                        continue
                word, _, values = line.partition(" ")
                count = values.count(" ") + 1 if values else 0
                if file_dimension is None:
                    if count == 0:
                        raise UsageError(
                            f"{flag}: line {line_number} is not 'word value value ...'. "
                            "Pass a word2vec, fastText or GloVe text file."
                        )
                    file_dimension = count
                    check_dimension(flag, file_dimension, dimension)
                if count != file_dimension:
                    parts = line.split(" ")
                    # A few GloVe files have tokens with spaces ("Jr. ."): the vector is the
                    # last `dimension` values, and no such token is in a vocabulary of words.
                    if count > file_dimension and not is_number(parts[1]):
                        continue
                    raise UsageError(
                        f"{flag}: line {line_number} has {count} values, not the file's {file_dimension}. "
                        "Fix or remove that line."
                    )
                vectors_read += 1
                row = vocabulary.get(word)
                by_lowercase = False
                if row is None and match_lowercase:
                    row = vocabulary.get(word.lower())
                    by_lowercase = True
                    if row is not None and found[row]:
                        continue
                elif row is not None and found[row] and not matched_by_lowercase[row]:
                    continue  # a repeated word: the first line wins
                if row is None:
                    continue
                try:
                    with np.errstate(over="ignore"):  # beyond float32's range: refused below, as inf
                        matrix[row] = np.asarray(values.split(" "), dtype=np.float32)
                except ValueError:
                    raise UsageError(
                        f"{flag}: line {line_number} has a value that is not a number. "
                        "Fix or remove that line."
                    ) from None
                if not np.isfinite(matrix[row]).all():
                    raise UsageError(
                        f"{flag}: line {line_number} has a value that is not a finite float32 number "
                        "(nan, inf, or beyond 3.4e38). Fix or remove that line."
                    )
                found[row] = True
                matched_by_lowercase[row] = by_lowercase
    except UnicodeDecodeError:
        raise UsageError(
            f"{flag}: line {line_number + 1} is not UTF-8 text. Pass a text file; convert a binary "
            "word2vec .bin file to text first (gensim: save_word2vec_format(..., binary=False))."
        ) from None
    except (EOFError, gzip.BadGzipFile, OSError) as error:
        raise UsageError(f"{flag}: cannot read it ({error}). Pass a complete, readable file.") from None
    if not vectors_read:
        raise UsageError(f"{flag} holds no vectors. Pass a word2vec, fastText or GloVe text file.")
    words_found = int(found[list(vocabulary.values())].sum())
    if words_found == 0:
        raise UsageError(
            f"{flag} has no vector for any of the {len(vocabulary):,} words of the vocabulary. "
            "Pass vectors of the training texts' language (and tokenization)."
        )
    spread = float(np.sqrt(3.0 * matrix[found].var()))
    random = np.random.default_rng(seed).uniform(-spread, spread, size=matrix.shape).astype(np.float32)
    matrix[~found] = random[~found]
    matrix[padding_id] = 0.0
    return EmbeddingMatrix(matrix, words_found, len(vocabulary), path)


def check_dimension(flag, file_dimension, dimension):
    if file_dimension != dimension:
        raise UsageError(
            f"{flag} holds {file_dimension}-dimensional vectors, but --embedding-dim is {dimension}. "
            f"Pass --embedding-dim {file_dimension}."
        )
