"""Benchmark: the validation loss of the TextCNN's NB-LR start against the trained network's.

The n-gram branch starts as NB-weighted logistic regression fitted on the
training split (`--ngram-start logistic_regression`). This script scores that
start alone on the validation and test splits, then trains the recipe with
`--no-refit` on the same seeded split and prints its validation loss after
each epoch, and the test accuracy of the weights that early stopping kept.
Accuracy and loss do not depend on the machine's load.

Usage:

    python benchmarks/textcnn_start_loss.py ../shared/data/amazon_review_snippets.csv.gz --seeds 0 1 2
"""

import argparse
import os
import tempfile

import numpy as np

import provenance
from textcnn_vs_baselines import load_split


def start_scores(features, part, label_ids):
    """Log loss and accuracy of the branch's start alone on one split."""
    from scipy.special import log_softmax

    ngrams = features.vectorizers["ngrams"]
    logits = features.ngram_start_.logits(ngrams.transform(part.inputs), ngrams.log_count_ratios_)
    log_probabilities = log_softmax(logits, axis=1)
    loss = -log_probabilities[np.arange(len(label_ids)), label_ids].mean()
    return loss, np.mean(log_probabilities.argmax(axis=1) == label_ids)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="a CSV file of texts and labels")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the splits")
    arguments = parser.parse_args()

    import kerastrain  # noqa: F401  (sets TensorFlow's environment first)
    from kerastrain.config import TextCNNConfig
    from kerastrain.recipes import textcnn

    print(provenance.line())
    for seed in arguments.seeds:
        split, _, train_labels, validation_labels, test_labels = load_split(arguments.data, seed)
        with tempfile.TemporaryDirectory() as folder:
            config = TextCNNConfig(
                data=arguments.data, seed=seed, refit=False, verbose=0, output_dir=os.path.join(folder, "run")
            )
            features = textcnn.fit_preprocessor(config, split.train)
            scores = [start_scores(features, part, labels) for part, labels in (
                (split.train, train_labels), (split.validation, validation_labels), (split.test, test_labels)
            )]  # fmt: skip
            run = textcnn.main(config)
            history, test_accuracy = run.history, run.metrics["test"]["accuracy"]
        print(
            f"seed {seed} start: train loss {scores[0][0]:.3f}, validation loss {scores[1][0]:.3f}, "
            f"test accuracy {scores[2][1]:.4f}"
        )
        losses = " ".join(f"{loss:.3f}" for loss in history["val_loss"])
        print(f"seed {seed} network: validation loss by epoch {losses}; test accuracy {test_accuracy:.4f}")


if __name__ == "__main__":
    main()
