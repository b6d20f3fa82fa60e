"""Benchmark: how long the TextCNN recipe's preparation takes before its first epoch.

The recipe fits its preprocessor on the training split before it trains: the
token and n-gram vectorizers, the n-gram branch's naive-Bayes log-count
ratios and, with `--ngram-start logistic_regression` (the default), the
NB-weighted logistic regression that the branch starts from. The training
times of `textcnn_vs_baselines.py` leave this out; this script times it on
the same seeded split, each start in turn, and prints the best of `--repeats`
fits.

Usage:

    python benchmarks/textcnn_preparation.py ../shared/data/trec_questions.csv.gz ../shared/data/amazon_review_snippets.csv.gz
"""

import argparse
import time

import provenance
from textcnn_vs_baselines import load_split


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="+", help="CSV files of texts and labels")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split")
    parser.add_argument("--repeats", type=int, default=3, help="fits per start; the best counts")
    arguments = parser.parse_args()

    import kerastrain  # noqa: F401  (sets TensorFlow's environment first)
    from kerastrain.config import NGRAM_STARTS, TextCNNConfig
    from kerastrain.recipes import textcnn

    print(provenance.line())
    for data in arguments.data:
        split = load_split(data, arguments.seed)[0]
        for start in NGRAM_STARTS:
            config = TextCNNConfig(data=data, ngram_start=start, seed=arguments.seed)
            seconds = []
            for _ in range(arguments.repeats):
                began = time.perf_counter()
                textcnn.fit_preprocessor(config, split.train)
                seconds.append(time.perf_counter() - began)
            print(f"{data}: {len(split.train):,} training texts, --ngram-start {start}: {min(seconds):.2f} s")


if __name__ == "__main__":
    main()
