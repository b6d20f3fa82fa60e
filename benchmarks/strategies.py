"""Benchmark: one recipe, one dataset, under every tf.distribute setup kerastrain runs.

Each setup trains the TextCNN recipe with the same flags (fixed epochs, no early
stopping, no refit, which cluster jobs leave out) through the command line a user would type, and the table shows test
accuracy and training examples per second, over all epochs and for the median
epoch after the first (compilation and cluster start-up excluded).

Usage:

    python benchmarks/strategies.py ../shared/data/trec_questions.csv.gz
    python benchmarks/strategies.py DATA.csv --epochs 5 --setups default parameter_server_local

All setups share this machine's cores: the numbers compare the overheads of the
strategies, not the speed-up that separate machines would give.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import pandas as pd

import provenance

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = [sys.executable, "-m", "kerastrain.recipes.textcnn"]
LAUNCHER = [sys.executable, os.path.join(REPO, "cluster", "launch_local.py")]
SETUPS = {
    "default": RECIPE + ["--strategy", "default"],
    # XLA is off by default, and parameter servers train without it (their
    # variables live on other tasks); this row shows what it does in one process.
    "default_xla": RECIPE + ["--strategy", "default", "--jit-compile"],
    "mirrored_2cpu": RECIPE + ["--strategy", "mirrored", "--cpu-devices", "2"],
    "parameter_server_local": RECIPE + ["--strategy", "parameter_server", "--local-cluster", "workers=2,ps=1"],
    # More in-process workers on the same 2 cores: if throughput rises, the steps
    # wait on round trips to the parameter server rather than on computation.
    "parameter_server_local_4_workers": RECIPE + ["--strategy", "parameter_server", "--local-cluster", "workers=4,ps=1"],
    "parameter_server_processes": LAUNCHER + ["--workers", "2", "--ps", "1", "--"] + RECIPE + ["--strategy", "parameter_server"],
    "multi_worker_mirrored_2proc": LAUNCHER + ["--workers", "2", "--ps", "0", "--no-chief", "--"] + RECIPE + ["--strategy", "multi_worker_mirrored"],
}


def run_setup(name, data, epochs, folder):
    run_dir = os.path.join(folder, name)
    command = SETUPS[name] + [
        "--data", data, "--epochs", str(epochs), "--early-stopping-patience", "0",
        "--no-refit", "--verbose", "2", "--output-dir", run_dir,
    ]  # fmt: skip
    environment = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        raise SystemExit(f"{name} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    with open(os.path.join(run_dir, "metrics.json")) as file:
        metrics = json.load(file)
    history = pd.read_csv(os.path.join(run_dir, "history.csv"))
    examples = history["examples_per_second"].iloc[0] * history["epoch_seconds"].iloc[0]
    return {
        "accuracy": metrics["test"]["accuracy"],
        "seconds": metrics["train_seconds"],
        "examples_per_second": metrics["examples_per_second"],
        "steady_examples_per_second": examples / statistics.median(history["epoch_seconds"].iloc[1:]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="A CSV (.csv or .csv.gz) with text and label columns.")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--setups", nargs="+", choices=SETUPS, default=list(SETUPS))
    parser.add_argument("--json", help="Also write the results to this JSON file.")
    arguments = parser.parse_args()
    print(provenance.line(), flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in arguments.setups:
            results[name] = run_setup(name, arguments.data, arguments.epochs, folder)
            print(f"{name}: {json.dumps(results[name])}", flush=True)
    reference = results.get("default")
    print(f"\n{os.path.basename(arguments.data)}, {arguments.epochs} epochs")
    width = max(len(name) for name in results)
    header = (
        f"| {'setup':<{width}} | {'test accuracy':>13} | {'train s':>7} | {'examples/s':>10} "
        f"| {'after epoch 1':>13} | {'vs default':>10} |"
    )
    print(header)
    print("|" + "|".join("-" * len(part) for part in header.split("|")[1:-1]) + "|")
    for name, row in results.items():
        ratio = row["steady_examples_per_second"] / reference["steady_examples_per_second"] if reference else float("nan")
        print(
            f"| {name:<{width}} | {row['accuracy']:>13.4f} | {row['seconds']:>7.1f} | {row['examples_per_second']:>10.0f} "
            f"| {row['steady_examples_per_second']:>13.0f} | {ratio:>9.2f}x |"
        )
    if arguments.json:
        with open(arguments.json, "w") as file:
            json.dump(
                {"data": arguments.data, "epochs": arguments.epochs, "results": results, "provenance": provenance.describe()},
                file,
                indent=2,
            )


if __name__ == "__main__":
    main()
