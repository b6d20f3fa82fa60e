"""The starting weights of the TextCNN's naive-Bayes n-gram branch: NB-weighted logistic regression.

The branch of `build_textcnn` with log-count ratios scores class `c` of a text
as `sum over its n-grams g of r_c[g] * w_c[g]`, a linear model on the text's
binary n-gram features scaled by the naive-Bayes log-count ratios `r_c` (Wang
and Manning 2012). `fit_logistic_regression` fits those weights with
scikit-learn's logistic regression on the training split, one class against
the rest as NBSVM does (one model for two classes), so that the network starts
where NB-weighted logistic regression ends: with its logits, and from there
training adds what the convolutions find. Needs scikit-learn and NumPy only.
"""

import dataclasses

import numpy as np
from scipy import sparse

from kerastrain.text_vectorization import PADDING_ID


@dataclasses.dataclass
class NgramStart:
    """Starting weights of the n-gram branch, one column per class.

    Attributes:
        weights: float32 array `(vocabulary_size, num_classes)`: `w_c[g]`, the
            weight of n-gram id `g` for class `c` (the ratio is applied on top).
        biases: float32 array `(num_classes,)`, the classifier's starting biases.
        l2: the L2 penalty per weight (summed over the table and added to the
            mean training loss) that the logistic regression's `C` amounts to.
    """

    weights: np.ndarray
    biases: np.ndarray
    l2: float

    def logits(self, ngram_ids, log_count_ratios):
        """The branch's logits for `ngram_ids` with these weights, as the network computes them at the start.

        Args:
            ngram_ids: int array `(texts, length)` from the binary n-gram
                vectorizer (each id once per text; 0 is padding).
            log_count_ratios: the vectorizer's `log_count_ratios_`.

        Returns:
            A float64 array `(texts, num_classes)`.
        """
        features = binary_features(ngram_ids, len(log_count_ratios))
        return features @ (np.asarray(log_count_ratios, np.float64) * self.weights) + self.biases


def binary_features(ngram_ids, vocabulary_size):
    """A sparse 0/1 matrix `(texts, vocabulary_size)` of the ids in each row, padding left out."""
    ngram_ids = np.asarray(ngram_ids)
    rows, columns = np.nonzero(ngram_ids != PADDING_ID)
    values = np.ones(len(rows))
    matrix = sparse.csr_matrix((values, (rows, ngram_ids[rows, columns])), shape=(len(ngram_ids), vocabulary_size))
    matrix.data[:] = 1.0  # an id twice in a row counts once, as the network's binary input does
    return matrix


def fit_logistic_regression(ngram_ids, labels, log_count_ratios, c=1.0, max_iterations=2000):
    """Fits NB-weighted logistic regression and returns it as the n-gram branch's starting weights.

    For each class, scikit-learn's `LogisticRegression(C=c)` learns, on the
    binary n-gram features scaled by that class's log-count ratios, whether a
    text belongs to the class (one against the rest); its coefficients become
    the class's column of weights and its intercept the class's bias. With two
    classes the log-count ratios of one are those of the other negated, so one
    model suffices: its weights go half to each class (the softmax of
    `[-d / 2, d / 2]` is the logistic of `d`), and the starting probabilities
    are the logistic regression's own.

    Args:
        ngram_ids: int array `(texts, length)`: the training texts through the
            binary n-gram vectorizer.
        labels: the texts' class ids, `0 .. num_classes - 1` in the order of
            the ratios' columns.
        log_count_ratios: float array `(vocabulary_size, num_classes)`, the
            vectorizer's `log_count_ratios_`.
        c: the inverse regularization strength of `LogisticRegression`.
            Defaults to `1.0`.
        max_iterations: the solver's iteration limit. Defaults to `2000`.

    Returns:
        An `NgramStart`.
    """
    import warnings

    import threadpoolctl
    from sklearn import exceptions, linear_model

    ratios = np.asarray(log_count_ratios, np.float64)
    labels = np.asarray(labels)
    vocabulary_size, num_classes = ratios.shape
    features = binary_features(ngram_ids, vocabulary_size)
    positive_classes = [1] if num_classes == 2 else range(num_classes)
    weights = np.zeros((vocabulary_size, num_classes))
    biases = np.zeros(num_classes)
    # L-BFGS makes many small BLAS calls (vectors of one value per n-gram), and
    # waking BLAS threads for each costs more than they save: on 2 cores one
    # thread fits 4x faster, to the same weights.
    with warnings.catch_warnings(), threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        # A solver that stops at the limit still gives a good start.
        warnings.simplefilter("ignore", exceptions.ConvergenceWarning)
        for positive in positive_classes:
            is_class = labels == positive
            if is_class.all() or not is_class.any():
                continue  # a class absent from the training split (or alone in it) keeps weight 0
            model = linear_model.LogisticRegression(C=c, max_iter=max_iterations)
            model.fit(features @ sparse.diags(ratios[:, positive]), is_class)
            weights[:, positive] = model.coef_[0]
            biases[positive] = model.intercept_[0]
    if num_classes == 2:
        # r_0 = -r_1: class 0's score with the same weights is -(class 1's).
        weights[:, 0] = weights[:, 1] = weights[:, 1] / 2
        biases = np.array([-biases[1] / 2, biases[1] / 2])
    # LogisticRegression minimizes |w|^2 / 2 + C * (sum of the losses), that is
    # |w|^2 / (2 C n) + the mean loss; with two classes each model weight is
    # split over two network weights, whose squares sum to half.
    l2 = l2_scale(num_classes) / (c * len(labels))
    return NgramStart(weights.astype(np.float32), biases.astype(np.float32), float(l2))


def fit_for_features(features, train_examples, c=1.0, l2=None):
    """`fit_logistic_regression` on the training texts through the fitted features' n-gram vectorizer.

    Args:
        features: a fitted `TextFeatures` with a binary `"ngrams"` vectorizer
            that learnt log-count ratios.
        train_examples: the training split, an `Examples` of texts and labels.
        c: the inverse regularization strength. Defaults to `1.0`.
        l2: instead of `c`, the network's L2 penalty per weight to fit for
            (`NgramStart.l2`): `c` is then the one that amounts to it on these
            examples. Defaults to `None`.

    Returns:
        An `NgramStart`.
    """
    ngrams = features.vectorizers["ngrams"]
    label_ids = np.searchsorted(ngrams.classes_, np.asarray(train_examples.labels))
    num_classes = len(ngrams.classes_)
    if l2 is not None:
        c = l2_scale(num_classes) / (l2 * len(label_ids))
    start = fit_logistic_regression(ngrams.transform(train_examples.inputs), label_ids, ngrams.log_count_ratios_, c)
    if l2 is not None:
        start.l2 = float(l2)  # exactly, not as rounded through c
    return start


def l2_scale(num_classes):
    """`l2 = l2_scale / (c * examples)`: with two classes each model weight is split over two network weights."""
    return 1.0 if num_classes == 2 else 0.5
