"""Benchmark: the MLP recipe against a hand-written Keras MLP and logistic regression.

Contenders, each trained on the same seeded train split (70 %) and scored on the
same test split (20 %); the networks validate on the same 10 %:

- recipe: `python -m kerastrain.recipes.mlp` with its defaults (tf-keras), plus
  any `--recipe-flags`, in float32.
- keras3: an MLP written by hand the way keras.io examples write one today
  (Keras 3): pixels divided by the training split's largest value, `Dense(256,
  relu)`, `Dense(128, relu)`, softmax, Adam at 1e-3, batches of 64, up to 30
  epochs with `EarlyStopping(patience=3, restore_best_weights=True)`.
- logistic: standardized features and scikit-learn's logistic regression (the
  recipe's own linear baseline, `kerastrain.baseline`), trained on the training
  split.

Each contender runs in its own process: Keras 3 and tf-keras cannot share one.
Only accuracy is compared; the script reports no speed.

Usage:

    python benchmarks/make_image_csv.py /tmp/letters28.csv.gz
    python benchmarks/mlp_vs_baselines.py digits /tmp/letters28.csv.gz --seeds 0 1 2
    python benchmarks/mlp_vs_baselines.py digits --contenders recipe --recipe-flags=--no-augment
    python benchmarks/mlp_vs_baselines.py digits /tmp/letters28.csv.gz --seeds 0 --scaled-extremes
"""

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile

import contender_process
import provenance

CONTENDERS = ("recipe", "keras3", "logistic")


def load_split(data, seed):
    from kerastrain import data as data_lib
    from kerastrain.data import splits

    examples = data_lib.load_examples(data, allow_numeric=True)
    split = splits.stratified_split(examples, 0.1, 0.2, seed)
    class_names, train_labels, validation_labels, test_labels = splits.encode_labels(split)
    return split, class_names, train_labels, validation_labels, test_labels


def run_recipe(arguments):
    from kerastrain import cli
    from kerastrain.config import MLPConfig
    from kerastrain.recipes import mlp

    with tempfile.TemporaryDirectory() as folder:
        flags = ["--data", arguments.data, "--seed", str(arguments.seed), "--precision", "float32", "--verbose", "0"]
        flags += shlex.split(arguments.recipe_flags) + ["--output-dir", os.path.join(folder, "run")]
        config = cli.parse_command(MLPConfig, flags, prog="mlp", description="").config
        metrics = mlp.main(config).metrics
    return {"accuracy": metrics["test"]["accuracy"], "epochs": metrics["epochs_run"]}


def run_keras3(arguments):
    import numpy as np

    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    import keras
    from keras import layers

    split, class_names, train_labels, validation_labels, test_labels = load_split(arguments.data, arguments.seed)
    keras.utils.set_random_seed(arguments.seed)
    largest = float(np.max(split.train.inputs)) or 1.0
    features = [split.train.inputs / largest, split.validation.inputs / largest, split.test.inputs / largest]
    model = keras.Sequential(
        [
            keras.Input(shape=(features[0].shape[1],)),
            layers.Dense(256, activation="relu"),
            layers.Dense(128, activation="relu"),
            layers.Dense(len(class_names), activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        features[0],
        train_labels,
        validation_data=(features[1], validation_labels),
        batch_size=64,
        epochs=30,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)],
        verbose=0,
    )
    _, accuracy = model.evaluate(features[2], test_labels, verbose=0)
    return {"accuracy": float(accuracy), "epochs": len(history.history["loss"])}


def run_logistic(arguments):
    from kerastrain import baseline

    split, class_names, train_labels, _, test_labels = load_split(arguments.data, arguments.seed)
    scores = baseline.fit_and_score(split, train_labels, test_labels, len(class_names))
    return {"accuracy": scores["accuracy"], "epochs": 0}


def print_scaled_extremes(data, seed):
    """Prints the largest absolute test value after per-feature and after global standardization."""
    import numpy as np
    import pandas as pd

    from kerastrain.data import images

    split = load_split(data, seed)[0]
    names = split.train.feature_names
    for per_feature, name in ((True, "per_feature"), (False, "global")):
        scaler = images.fit_scaler(split.train.inputs, names, per_feature=per_feature)
        scaled = scaler.transform(pd.DataFrame(split.test.inputs, columns=names))
        print(f"{os.path.basename(data)} seed {seed}: largest |test value| with --scaling {name}: "
              f"{np.abs(scaled).max():.1f}")  # fmt: skip


def run_contender(contender, arguments, data, seed):
    """Runs one contender in a fresh process and returns its result dict."""
    command = [
        sys.executable, __file__, data, "--contender", contender, "--seeds", str(seed),
        # One argument with "=": a value that starts with "--" is not taken for a flag.
        f"--recipe-flags={arguments.recipe_flags}",
    ]  # fmt: skip
    return contender_process.run(command, f"{contender} on {data}, seed {seed}")


def summarize(results, data, seeds, contenders):
    """Prints the table of one dataset and returns the mean accuracy per contender."""
    print(f"\n{os.path.basename(data)}: seeds {seeds}")
    print("| contender | test accuracy, mean ± sd | per seed | epochs |")
    print("|-----------|--------------------------|----------|--------|")
    means = {}
    for contender in contenders:
        accuracies = [row["accuracy"] for row in results[contender]]
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        means[contender] = statistics.mean(accuracies)
        per_seed = " ".join(f"{accuracy:.4f}" for accuracy in accuracies)
        epochs = " ".join(str(row["epochs"]) for row in results[contender])
        print(f"| {contender} | {means[contender]:.4f} ± {spread:.4f} | {per_seed} | {epochs} |")
    return means


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="+", help="Datasets: digits, or CSVs of numeric columns and a label.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--recipe-flags", default="", help='Extra recipe flags, such as "--epochs 40".')
    parser.add_argument("--contender", choices=CONTENDERS, help="Run one contender on one seed (internal).")
    parser.add_argument("--json", help="Also write all results to this JSON file.")
    parser.add_argument(
        "--scaled-extremes",
        action="store_true",
        help="Only print the largest absolute test value after each scaling, and train nothing.",
    )
    arguments = parser.parse_args()
    if not arguments.contender:
        print(provenance.line(), flush=True)
    if arguments.scaled_extremes:
        for data in arguments.data:
            print_scaled_extremes(data, arguments.seeds[0])
        return
    if arguments.contender:
        arguments.seed = arguments.seeds[0]
        arguments.data = arguments.data[0]
        runner = {"recipe": run_recipe, "keras3": run_keras3, "logistic": run_logistic}[arguments.contender]
        print(contender_process.RESULT_PREFIX + json.dumps(runner(arguments)))
        return
    if arguments.recipe_flags:
        print(f"recipe flags: {arguments.recipe_flags}")
    everything = {}
    for data in arguments.data:
        results = {contender: [] for contender in arguments.contenders}
        for seed in arguments.seeds:
            for contender in arguments.contenders:
                row = run_contender(contender, arguments, data, seed)
                print(f"{os.path.basename(data)} seed {seed} {contender:<8} accuracy {row['accuracy']:.4f} "
                      f"{row['epochs']} epochs", flush=True)  # fmt: skip
                results[contender].append(row)
        everything[data] = results
    for data, results in everything.items():
        summarize(results, data, arguments.seeds, arguments.contenders)
    if arguments.json:
        with open(arguments.json, "w") as file:
            json.dump({"seeds": arguments.seeds, "recipe_flags": arguments.recipe_flags, "results": everything,
                       "provenance": provenance.describe()}, file, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
