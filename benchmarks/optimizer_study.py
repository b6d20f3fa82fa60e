"""Benchmark: the optimizer study at full size, as notebooks/optimizer_study.ipynb runs it small.

An MLP on scikit-learn's digits (all 1,797 images) trains under six optimizers;
then Adam and SGD each with and without learning-rate decay, batch normalization
and dropout; then a plain TextCNN on 2,000 SMS messages under four optimizers.
Early stopping is off, so every variant runs the same epochs. Each optimizer
uses its customary learning rate (`kerastrain.search.studies.OPTIMIZER_LEARNING_RATES`).

Usage:

    python benchmarks/optimizer_study.py
    python benchmarks/optimizer_study.py --mlp-epochs 30 --textcnn-epochs 10 --output-dir runs/optimizer_study

Writes `docs/images/optimizer_study.png` (validation loss and accuracy, one row
per comparison) and `benchmarks/results/optimizer_study.json` (settings, final
metrics and per-epoch validation curves of every variant), and prints the table
of final metrics. Rerunning resumes: a variant whose run folder already holds
its finished run is read back, not retrained.
"""

import argparse
import json
import math
import os

import pandas as pd

from kerastrain.search import studies
from kerastrain.config import MLPConfig, TextCNNConfig, resolve
from kerastrain.recipes import mlp, textcnn

import provenance

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = 1797


def mlp_comparisons(epochs, output_dir):
    """The MLP comparisons on digits, as a dict from title to results."""
    base = resolve(
        MLPConfig,
        overrides={
            "data": "digits", "epochs": epochs, "hidden_units": (256, 128), "dropout": 0.0,
            "batch_normalization": False, "early_stopping_patience": 0, "verbose": 0,
        },
    )  # fmt: skip
    train_examples = DIGITS * (1 - base.validation_fraction - base.test_fraction)
    total_steps = math.ceil(train_examples / base.batch_size) * base.epochs
    # Halves the learning rate every quarter of the run: the last steps are 16x smaller.
    decay = {"schedule": "exponential", "decay_rate": 0.5, "decay_steps": max(1, total_steps // 4)}
    pair = studies.optimizer_variants(["sgd", "adam"])
    variants = {
        "Optimizers (MLP, digits)": studies.optimizer_variants(),
        "Learning-rate decay (MLP)": studies.with_and_without(pair, "decay", decay),
        "Batch normalization (MLP)": studies.with_and_without(pair, "batch norm", {"batch_normalization": True}),
        "Dropout 0.2 (MLP)": studies.with_and_without(pair, "dropout", {"dropout": 0.2}),
    }
    folder = os.path.join(output_dir, "mlp")
    return base, {title: studies.run_variants("mlp", base, named, folder) for title, named in variants.items()}


def textcnn_comparison(epochs, output_dir):
    """Four optimizers on a plain TextCNN (no n-gram branch) and 2,000 SMS messages."""
    base = resolve(
        TextCNNConfig,
        overrides={
            "max_examples": 2000, "epochs": epochs, "embedding_dim": 32, "filters": 32,
            "ngram_features": 0, "early_stopping_patience": 0, "verbose": 0,
        },
    )  # fmt: skip
    named = studies.optimizer_variants(["sgd", "momentum", "rmsprop", "adam"])
    results = studies.run_variants("textcnn", base, named, os.path.join(output_dir, "textcnn"))
    return base, {"Optimizers (TextCNN, SMS)": results}


def describe(results):
    """Final metrics and validation curves of each variant, for the JSON file."""
    table = studies.final_metrics_table(results)
    described = {}
    for name, result in results.items():
        row = {key: float(value) for key, value in table.loc[name].items()}
        row["epochs"] = int(row["epochs"])
        described[name] = {
            **row,
            "val_loss": result.history["val_loss"].round(5).tolist(),
            "val_accuracy": result.history["val_accuracy"].round(5).tolist(),
        }
    return described


def settings_of(config):
    return {name: value for name, value in config.to_dict().items() if name not in ("output_dir", "verbose")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mlp-epochs", type=int, default=30)
    parser.add_argument("--textcnn-epochs", type=int, default=10)
    parser.add_argument("--output-dir", default=os.path.join(REPO, "runs", "optimizer_study"))
    parser.add_argument("--figure", default=os.path.join(REPO, "docs", "images", "optimizer_study.png"))
    parser.add_argument("--json", default=os.path.join(REPO, "benchmarks", "results", "optimizer_study.json"))
    arguments = parser.parse_args()
    print(provenance.line(), flush=True)

    mlp_base, comparisons = mlp_comparisons(arguments.mlp_epochs, arguments.output_dir)
    textcnn_base, textcnn_results = textcnn_comparison(arguments.textcnn_epochs, arguments.output_dir)
    comparisons.update(textcnn_results)

    figure = studies.plot_comparisons(comparisons)
    os.makedirs(os.path.dirname(arguments.figure), exist_ok=True)
    figure.savefig(arguments.figure, dpi=80)
    os.makedirs(os.path.dirname(arguments.json), exist_ok=True)
    with open(arguments.json, "w") as file:
        json.dump(
            {
                "settings": {"mlp": settings_of(mlp_base), "textcnn": settings_of(textcnn_base)},
                "learning_rates": studies.OPTIMIZER_LEARNING_RATES,
                "comparisons": {title: describe(results) for title, results in comparisons.items()},
                "provenance": provenance.describe(),
            },
            file,
            indent=2,
        )
    table = pd.concat({title: studies.final_metrics_table(results) for title, results in comparisons.items()})
    with pd.option_context("display.width", 160, "display.max_columns", 10):
        print(table.round(4))
    print(f"wrote {arguments.figure} and {arguments.json}")


if __name__ == "__main__":
    main()
