"""Benchmark: a recipe's first epoch with its training step traced once, against tf-keras's own step functions.

With `--steps-per-execution` above 1, tf-keras's training and test functions
trace the model's step twice (see `kerastrain/step_functions.py`); the recipes
build their own, which trace it once. This script trains a recipe with each, in
fresh processes, alternating which runs first: `once` is the recipe as it is,
`tf_keras` the same recipe with `step_functions.trace_steps_once` made to leave
the model as tf-keras compiled it. It prints each run's first epoch (the
tracing, the first batches and the first validation), its median later epoch,
its whole training (`train_seconds`, the refit's included) and its test
accuracy, which must be the same both ways; then the median of each and the
ratio of first epochs.

Usage:

    python benchmarks/step_tracing.py textcnn ../shared/data/amazon_review_snippets.csv.gz --rounds 3
    python benchmarks/step_tracing.py mlp digits --rounds 3
"""

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile

import contender_process
import provenance

CONTENDERS = ("once", "tf_keras")


def run_child(arguments):
    """Trains the recipe once in this process, as `arguments.contender` says; prints its result."""
    from kerastrain import cli, config as config_lib, step_functions
    from kerastrain.recipes import mlp, textcnn

    if arguments.contender == "tf_keras":
        step_functions.trace_steps_once = lambda model: model
    recipe = {"textcnn": textcnn, "mlp": mlp}[arguments.recipe]
    config_class = {"textcnn": config_lib.TextCNNConfig, "mlp": config_lib.MLPConfig}[arguments.recipe]
    with tempfile.TemporaryDirectory() as folder:
        flags = [
            "--data", arguments.data, "--seed", str(arguments.seed), "--precision", "float32", "--verbose", "0",
            "--output-dir", os.path.join(folder, "run"),
        ]  # fmt: skip
        config = cli.parse_command(config_class, flags, arguments.recipe, "").config
        metrics = recipe.main(config).metrics
        with open(os.path.join(folder, "run", "history.csv")) as file:
            epoch_seconds = [float(row["epoch_seconds"]) for row in csv.DictReader(file)]
    result = {
        "accuracy": metrics["test"]["accuracy"],
        "first_epoch_seconds": epoch_seconds[0],
        "later_epoch_seconds": statistics.median(epoch_seconds[1:] or epoch_seconds),
        "train_seconds": metrics["train_seconds"] + metrics.get("refit", {}).get("train_seconds", 0.0),
    }
    print(contender_process.RESULT_PREFIX + json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recipe", choices=("textcnn", "mlp"))
    parser.add_argument("data", help="A dataset: a CSV path or a dataset name.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="Runs of each contender, alternating which goes first.")
    parser.add_argument("--contender", choices=CONTENDERS, help="Run one contender once (internal).")
    arguments = parser.parse_args()
    if arguments.contender:
        run_child(arguments)
        return
    print(provenance.line(), flush=True)
    results = {contender: [] for contender in CONTENDERS}
    for round_index in range(arguments.rounds):
        for contender in CONTENDERS[:: 1 if round_index % 2 == 0 else -1]:
            command = [
                sys.executable, __file__, arguments.recipe, arguments.data, "--seed", str(arguments.seed),
                "--contender", contender,
            ]  # fmt: skip
            row = contender_process.run(command, f"{contender} in round {round_index}")
            results[contender].append(row)
            print(f"round {round_index} {contender:<8} accuracy {row['accuracy']:.4f}, first epoch "
                  f"{row['first_epoch_seconds']:.2f} s, later epochs {row['later_epoch_seconds']:.2f} s, "
                  f"training {row['train_seconds']:.2f} s", flush=True)  # fmt: skip
    print(f"\n{arguments.recipe} on {os.path.basename(arguments.data)}, seed {arguments.seed}: median of {arguments.rounds} rounds")
    print("| step functions | test accuracy | first epoch s | later epoch s | training s |")
    print("|---|---|---|---|---|")
    medians = {}
    for contender, rows in results.items():
        medians[contender] = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        accuracies = " ".join(sorted({f"{row['accuracy']:.4f}" for row in rows}))
        median = medians[contender]
        print(f"| {contender} | {accuracies} | {median['first_epoch_seconds']:.2f} | "
              f"{median['later_epoch_seconds']:.2f} | {median['train_seconds']:.2f} |")  # fmt: skip
    ratios = [
        tf_keras["first_epoch_seconds"] / once["first_epoch_seconds"]
        for once, tf_keras in zip(results["once"], results["tf_keras"])
    ]
    print(
        "tf_keras / once, first epoch: x"
        f"{medians['tf_keras']['first_epoch_seconds'] / medians['once']['first_epoch_seconds']:.2f} of the medians"
        f" (rounds {' '.join(f'x{ratio:.2f}' for ratio in ratios)})"
    )


if __name__ == "__main__":
    main()
