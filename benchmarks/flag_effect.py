"""Benchmark: test accuracy and training time of a recipe under variants of its flags, over seeds and datasets.

Each variant is a set of extra recipe flags (the first, by default, none); every
run trains the recipe from scratch in its own process on the same seeded split,
in float32. On each seed the variants run in turn, in the opposite order on the
next seed, so that a slower or faster spell of the machine falls on all of them.
The script prints one table per dataset with each variant's mean, spread and
per-seed test accuracy, its difference from the first variant on the same
seeds, and its times: the first epoch (tracing and any XLA compilation
included), the median later epoch, and the whole training (`train_seconds`,
the refit's included).

Usage:

    python benchmarks/flag_effect.py textcnn ../shared/data/trec_questions.csv.gz \\
        ../shared/data/amazon_review_snippets.csv.gz --variant="--no-augment" --variant="--augment"
    python benchmarks/flag_effect.py mlp digits /tmp/letters28.csv.gz \\
        --variant="--no-augment" --variant="--augment" --variant="--augment --augment-shift 1"
    python benchmarks/flag_effect.py mlp digits --variant="--no-jit-compile" --variant="--jit-compile"
"""

import argparse
import csv
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile

import provenance

# Each variant's times in its table are the median over seeds.
TIMES = ("first_epoch_seconds", "later_epoch_seconds", "train_seconds")


def run_once(recipe, data, seed, flags):
    """Trains `recipe` once in a fresh process; returns its test accuracy and epochs."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable, "-m", f"kerastrain.recipes.{recipe}", "--data", data, "--seed", str(seed),
            "--precision", "float32", "--verbose", "0", *shlex.split(flags),
            "--output-dir", os.path.join(folder, "run"),
        ]  # fmt: skip
        environment = {name: value for name, value in os.environ.items() if name != "TF_CONFIG"}
        result = subprocess.run(command, capture_output=True, text=True, env=environment)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
        with open(os.path.join(folder, "run", "metrics.json")) as file:
            metrics = json.load(file)
        with open(os.path.join(folder, "run", "history.csv")) as file:
            epoch_seconds = [float(row["epoch_seconds"]) for row in csv.DictReader(file)]
    refit_seconds = metrics.get("refit", {}).get("train_seconds", 0.0)
    return {
        "accuracy": metrics["test"]["accuracy"],
        "epochs": metrics["epochs"],
        "first_epoch_seconds": epoch_seconds[0],
        "later_epoch_seconds": statistics.median(epoch_seconds[1:] or epoch_seconds),
        "train_seconds": metrics["train_seconds"] + refit_seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe", choices=("textcnn", "mlp"))
    parser.add_argument("data", nargs="+", help="Datasets: CSV paths or dataset names.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--variant",
        action="append",
        dest="variants",
        help='Recipe flags of one variant, as --variant="--augment"; repeat for more. Defaults to '
        '--variant="--no-augment" --variant="--augment".',
    )
    parser.add_argument("--flags", default="", help="Recipe flags common to every variant.")
    parser.add_argument("--json", help="Also write all results to this JSON file.")
    arguments = parser.parse_args()
    arguments.variants = arguments.variants or ["--no-augment", "--augment"]
    print(provenance.line(), flush=True)
    results = {}
    for data in arguments.data:
        results[data] = {variant: [] for variant in arguments.variants}
        for index, seed in enumerate(arguments.seeds):
            for variant in arguments.variants[:: 1 if index % 2 == 0 else -1]:
                row = run_once(arguments.recipe, data, seed, f"{arguments.flags} {variant}")
                results[data][variant].append(row)
                print(f"{os.path.basename(data)} seed {seed} [{variant}] accuracy {row['accuracy']:.4f} "
                      f"{row['epochs']} epochs, first epoch {row['first_epoch_seconds']:.2f} s, later epochs "
                      f"{row['later_epoch_seconds']:.2f} s, training {row['train_seconds']:.1f} s", flush=True)  # fmt: skip
    if arguments.flags:
        print(f"\ncommon flags: {arguments.flags}")
    for data, variants in results.items():
        print(f"\n{os.path.basename(data)} ({arguments.recipe}): seeds {arguments.seeds}")
        print("| variant | test accuracy, mean ± sd | per seed | vs first, mean | epochs "
              "| first epoch s | later epoch s | training s |")
        print("|---------|--------------------------|----------|----------------|--------"
              "|---------------|---------------|------------|")  # fmt: skip
        first = [row["accuracy"] for row in next(iter(variants.values()))]
        for variant, rows in variants.items():
            accuracies = [row["accuracy"] for row in rows]
            spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
            difference = statistics.mean(accuracies) - statistics.mean(first)
            per_seed = " ".join(f"{accuracy:.4f}" for accuracy in accuracies)
            epochs = " ".join(str(row["epochs"]) for row in rows)
            seconds = {key: statistics.median(row[key] for row in rows) for key in TIMES}
            print(f"| `{variant}` | {statistics.mean(accuracies):.4f} ± {spread:.4f} | {per_seed} | "
                  f"{difference:+.4f} | {epochs} | {seconds['first_epoch_seconds']:.2f} | "
                  f"{seconds['later_epoch_seconds']:.2f} | {seconds['train_seconds']:.1f} |")  # fmt: skip
    if arguments.json:
        with open(arguments.json, "w") as file:
            json.dump({"recipe": arguments.recipe, "seeds": arguments.seeds, "flags": arguments.flags,
                       "results": results, "provenance": provenance.describe()}, file, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
