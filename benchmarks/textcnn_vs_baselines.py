"""Benchmark: the TextCNN recipe against a Keras 3 TextCNN and linear baselines on the same seeded splits.

Every contender sees the same seeded split of the data (70% train, 10%
validation, 20% test) and is scored on the same test split:

- recipe: `python -m kerastrain.recipes.textcnn` with its defaults (tf-keras):
  trains on the training split, stops early on the validation split, then
  (`--refit`, a default) trains a new model on both splits together for the
  best epoch count; its time counts in.
- keras3: a TextCNN written by hand the way keras.io examples write models today
  (Keras 3, a `TextVectorization` layer mapped over a cached `tf.data` pipeline,
  default `compile`), with the recipe's kernel sizes, filters, embedding size,
  vocabulary, batch size, sequence length rule and early stopping.
- tfidf_lr: TF-IDF of word 1-2 grams and logistic regression (scikit-learn),
  trained on the training split, as the networks are.
- nb_lr: naive-Bayes-weighted logistic regression (Wang and Manning 2012, the
  NBSVM idea with a logistic loss): binary word 1-2-gram indicators scaled by
  each n-gram's log-count ratio r = log((p / |p|_1) / (q / |q|_1)), smoothing
  alpha = 1, and logistic regression with scikit-learn's default C = 1 on them;
  for more than two classes one ratio vector and one model per class (one
  against the rest), the highest score wins. Trained on the training split.
- tfidf_lr+val, nb_lr+val: the same two models trained on the training and the
  validation split together (80% of the data). They need no validation split,
  so this is what a user of them would do; the recipe's refit does the same
  once early stopping has picked its epoch count.

Each contender runs in its own process: Keras 3 and tf-keras cannot share one.

Usage:

    python benchmarks/textcnn_vs_baselines.py ../shared/data/trec_questions.csv.gz
    python benchmarks/textcnn_vs_baselines.py DATA.csv --seeds 0 1 2 --epochs 10
    python benchmarks/textcnn_vs_baselines.py DATA.csv --seeds 0 1 2 --repeats 3
    python benchmarks/textcnn_vs_baselines.py DATA.csv --accuracy-only --contenders recipe nb_lr nb_lr+val
    python benchmarks/textcnn_vs_baselines.py DATA.csv --recipe-flags --ngram-weighting idf

`--accuracy-only` leaves the time columns out: accuracy does not depend on the
machine's load, throughput does, so a busy machine can still measure it.

Throughput is training examples per second over the epochs (validation
included, as `fit` runs it), measured alike for both networks: over all epochs
(so the first epoch's graph tracing and XLA compilation count), and for the
median epoch after the first, which is what a longer run sees. On a small
shared machine two runs of the same code differ in speed by up to a fifth:
`--repeats 3` runs every contender three times, in the opposite order each
time, and reports the median repeat and each repeat's speed ratio.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import contender_process
import provenance

CONTENDERS = ("recipe", "keras3", "tfidf_lr", "nb_lr", "tfidf_lr+val", "nb_lr+val")


def load_split(data, seed, max_examples=0):
    from kerastrain import data as data_lib
    from kerastrain.data import splits

    examples = data_lib.load_examples(data)
    split = splits.stratified_split(examples, 0.1, 0.2, seed, max_examples)
    class_names, train_labels, validation_labels, test_labels = splits.encode_labels(split)
    return split, class_names, train_labels, validation_labels, test_labels


def steady_rate(_, epoch_seconds, history):
    """Training examples per second of the median epoch after the first (compilation)."""
    epoch_seconds = list(epoch_seconds)
    examples = history["examples_per_second"].iloc[0] * epoch_seconds[0]
    return examples / statistics.median(epoch_seconds[1:] or epoch_seconds)


def run_recipe(arguments):
    from kerastrain import cli
    from kerastrain.config import TextCNNConfig
    from kerastrain.recipes import textcnn
    from kerastrain.run_folder import RunFolder

    with tempfile.TemporaryDirectory() as folder:
        flags = [
            "--data", arguments.data, "--seed", str(arguments.seed), "--epochs", str(arguments.epochs),
            "--max-examples", str(arguments.max_examples), "--verbose", "0",
            "--output-dir", os.path.join(folder, "run"), *arguments.recipe_flags,
        ]  # fmt: skip
        config = cli.parse_command(TextCNNConfig, flags, "recipe", "").config
        metrics = textcnn.main(config).metrics
        history = RunFolder(config.output_dir).read_history()
    # Under --refit the second training counts in: its seconds and its examples.
    refit = metrics.get("refit", {"train_seconds": 0.0, "train_examples": 0, "epochs": 0})
    examples = metrics["train_examples"] * metrics["epochs_run"] + refit["train_examples"] * refit["epochs"]
    seconds = metrics["train_seconds"] + refit["train_seconds"]
    return {
        "accuracy": metrics["test"]["accuracy"],
        "seconds": seconds,
        "examples_per_second": examples / seconds,
        "steady_examples_per_second": steady_rate(metrics["examples_per_second"], history["epoch_seconds"], history),
        "epochs": metrics["epochs_run"],
    }


def run_keras3(arguments):
    import numpy as np

    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    import keras
    import tensorflow as tf
    from keras import layers

    split, class_names, train_labels, validation_labels, test_labels = load_split(
        arguments.data, arguments.seed, arguments.max_examples
    )
    keras.utils.set_random_seed(arguments.seed)
    lengths = [len(text.split()) for text in split.train.inputs]
    sequence_length = max(int(np.ceil(np.percentile(lengths, 95))), 5)
    vectorize_layer = layers.TextVectorization(
        max_tokens=20000, output_mode="int", output_sequence_length=sequence_length
    )
    vectorize_layer.adapt(split.train.inputs)

    def dataset(texts, labels, shuffle):
        data = tf.data.Dataset.from_tensor_slices((list(texts), labels))
        if shuffle:
            data = data.shuffle(len(labels), seed=arguments.seed)
        data = data.batch(64).map(lambda text, label: (vectorize_layer(text), label))
        return data.cache().prefetch(10)

    inputs = keras.Input(shape=(sequence_length,), dtype="int64")
    embedded = layers.Embedding(20000, 128)(inputs)
    pooled = [
        layers.GlobalMaxPooling1D()(layers.Conv1D(128, size, activation="relu")(embedded))
        for size in (3, 4, 5)
    ]
    features = layers.Dropout(0.5)(layers.concatenate(pooled))
    outputs = layers.Dense(len(class_names), activation="softmax")(features)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    start = time.perf_counter()
    model.fit(
        dataset(split.train.inputs, train_labels, shuffle=True),
        validation_data=dataset(split.validation.inputs, validation_labels, shuffle=False),
        epochs=arguments.epochs,
        callbacks=[
            timer,
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True),
        ],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(dataset(split.test.inputs, test_labels, shuffle=False), verbose=0)
    return {
        "accuracy": float(accuracy),
        "seconds": seconds,
        "examples_per_second": len(split.train) * len(timer.seconds) / sum(timer.seconds),
        "steady_examples_per_second": len(split.train) / statistics.median(timer.seconds[1:] or timer.seconds),
        "epochs": len(timer.seconds),
    }


def linear_training_data(arguments, split, train_labels, validation_labels):
    """The texts and labels a linear contender trains on: the training split, plus validation for `+val`."""
    import numpy as np

    texts, labels = list(split.train.inputs), train_labels
    if arguments.contender.endswith("+val"):
        texts += list(split.validation.inputs)
        labels = np.concatenate([train_labels, validation_labels])
    return texts, labels


def run_tfidf_lr(arguments):
    from sklearn import linear_model, pipeline
    from sklearn.feature_extraction import text

    split, class_names, train_labels, validation_labels, test_labels = load_split(
        arguments.data, arguments.seed, arguments.max_examples
    )
    import numpy as np

    model = pipeline.make_pipeline(
        text.TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        linear_model.LogisticRegression(max_iter=2000),
    )
    texts, labels = linear_training_data(arguments, split, train_labels, validation_labels)
    start = time.perf_counter()
    model.fit(texts, labels)
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(model.predict(list(split.test.inputs)) == test_labels))
    rate = len(texts) / seconds
    return {"accuracy": accuracy, "seconds": seconds, "examples_per_second": rate, "steady_examples_per_second": rate, "epochs": 1}


def naive_bayes_log_count_ratios(features, is_class, alpha=1.0):
    """r = log((p / |p|_1) / (q / |q|_1)) of binary features, for one class against the rest."""
    import numpy as np

    p = np.asarray(features[is_class].sum(axis=0)).ravel() + alpha
    q = np.asarray(features[~is_class].sum(axis=0)).ravel() + alpha
    return np.log(p / p.sum()) - np.log(q / q.sum())


def run_nb_lr(arguments):
    import numpy as np
    from scipy import sparse
    from sklearn import linear_model
    from sklearn.feature_extraction import text

    split, class_names, train_labels, validation_labels, test_labels = load_split(
        arguments.data, arguments.seed, arguments.max_examples
    )
    texts, labels = linear_training_data(arguments, split, train_labels, validation_labels)
    start = time.perf_counter()
    vectorizer = text.CountVectorizer(ngram_range=(1, 2), binary=True)
    features = vectorizer.fit_transform(texts)
    test_features = vectorizer.transform(list(split.test.inputs))
    # Two classes: one model (the second class against the first); more: one per class.
    positive_classes = [1] if len(class_names) == 2 else range(len(class_names))
    scores = []
    for positive in positive_classes:
        is_class = labels == positive
        scale = sparse.diags(naive_bayes_log_count_ratios(features, is_class))
        model = linear_model.LogisticRegression(C=1.0, max_iter=2000)
        model.fit(features @ scale, is_class)
        scores.append(model.decision_function(test_features @ scale))
    seconds = time.perf_counter() - start
    if len(class_names) == 2:
        predicted = (scores[0] > 0).astype(int)
    else:
        predicted = np.argmax(np.stack(scores, axis=1), axis=1)
    accuracy = float(np.mean(predicted == test_labels))
    rate = len(texts) / seconds
    return {"accuracy": accuracy, "seconds": seconds, "examples_per_second": rate, "steady_examples_per_second": rate, "epochs": 1}


def run_contender(contender, data, seed, epochs, max_examples, recipe_flags=()):
    """Runs one contender in a fresh process and returns its result dict."""
    command = [
        sys.executable, __file__, data, "--contender", contender, "--seeds", str(seed),
        "--epochs", str(epochs), "--max-examples", str(max_examples),
    ]  # fmt: skip
    if contender == "recipe" and recipe_flags:
        command += ["--recipe-flags", *recipe_flags]
    return contender_process.run(command, f"{contender} on seed {seed}")


def summarize(results, data, seeds, accuracy_only=False):
    """Prints the table of one dataset and returns its means per contender.

    `results[contender]` holds one row per run, each with its `seed` and
    `repeat`. Accuracy is the mean over seeds (and repeats); a time is the
    mean over seeds within a repeat, and the table gives the median of those
    over the repeats, as it gives the recipe's speed ratio to Keras 3.
    """
    print(f"\n{os.path.basename(data)}: seeds {seeds}")
    header = f"| {'contender':<12} | {'test accuracy, mean ± sd':>24} | {'per seed':>21} |"
    if not accuracy_only:
        header += f" {'train s':>7} | {'examples/s':>10} | {'after epoch 1':>13} |"
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
    means = {}
    for contender, rows in results.items():
        per_seed = [statistics.mean(row["accuracy"] for row in rows if row["seed"] == seed) for seed in seeds]
        spread = statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0
        per_repeat = {key: repeat_means(rows, key) for key in ("seconds", "examples_per_second", "steady_examples_per_second")}
        means[contender] = {
            "accuracy": statistics.mean(per_seed),
            "seconds": statistics.median(per_repeat["seconds"]),
            "speed": statistics.median(per_repeat["examples_per_second"]),
            "steady": statistics.median(per_repeat["steady_examples_per_second"]),
            "per_repeat": per_repeat,
        }
        mean = means[contender]
        accuracies = " ".join(f"{accuracy:.3f}" for accuracy in per_seed)
        row = f"| {contender:<12} | {mean['accuracy']:>15.4f} ± {spread:.4f} | {accuracies:>21} |"
        if not accuracy_only:
            row += f" {mean['seconds']:>7.1f} | {mean['speed']:>10.0f} | {mean['steady']:>13.0f} |"
        print(row)
    if "recipe" in means:
        recipe = means["recipe"]
        comparisons = [
            f"recipe - {other} accuracy {recipe['accuracy'] - means[other]['accuracy']:+.4f}"
            for other in means
            if other != "recipe"
        ]
        if "keras3" in means and not accuracy_only:
            comparisons.append("recipe / keras3 examples/s " + speed_ratios(recipe, means["keras3"]))
        print("; ".join(comparisons))
    return means


def repeat_means(rows, key):
    """The mean of `key` over the seeds of each repeat, in repeat order."""
    repeats = sorted({row["repeat"] for row in rows})
    return [statistics.mean(row[key] for row in rows if row["repeat"] == repeat) for repeat in repeats]


def speed_ratios(recipe, keras3):
    """`x1.76 overall, x2.14 after epoch 1`: medians of the per-repeat ratios, each repeat's listed when several."""
    parts = []
    for key, label in (("examples_per_second", "overall"), ("steady_examples_per_second", "after epoch 1")):
        ratios = [mine / theirs for mine, theirs in zip(recipe["per_repeat"][key], keras3["per_repeat"][key])]
        part = f"x{statistics.median(ratios):.2f} {label}"
        if len(ratios) > 1:
            part += " (repeats " + " ".join(f"x{ratio:.2f}" for ratio in ratios) + ")"
        parts.append(part)
    return ", ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="A CSV (.csv or .csv.gz) with text and label columns.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-examples", type=int, default=0)
    parser.add_argument(
        "--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS),
        help="The contenders to run, in this order. Defaults to all.",
    )  # fmt: skip
    parser.add_argument(
        "--accuracy-only", action="store_true",
        help="Leave the time and throughput columns out of the table (for a busy machine).",
    )  # fmt: skip
    parser.add_argument(
        "--recipe-flags", nargs=argparse.REMAINDER, default=[],
        help="Flags for the recipe contender, such as --ngram-weighting idf; put them last.",
    )  # fmt: skip
    parser.add_argument(
        "--repeats", type=int, default=1,
        help="Run every contender this many times, in the opposite order each time; times are the median repeat.",
    )  # fmt: skip
    parser.add_argument("--contender", choices=CONTENDERS, help="Run one contender on one seed (internal).")
    parser.add_argument("--json", help="Also write all results to this JSON file.")
    arguments = parser.parse_args()
    if arguments.contender:
        arguments.seed = arguments.seeds[0]
        runners = {
            "recipe": run_recipe, "keras3": run_keras3, "tfidf_lr": run_tfidf_lr, "nb_lr": run_nb_lr,
            "tfidf_lr+val": run_tfidf_lr, "nb_lr+val": run_nb_lr,
        }  # fmt: skip
        print(contender_process.RESULT_PREFIX + json.dumps(runners[arguments.contender](arguments)))
        return
    print(provenance.line(), flush=True)
    results = {contender: [] for contender in arguments.contenders}
    for repeat in range(arguments.repeats):
        # Alternating the order spreads a drift in the machine's speed over every contender alike.
        order = arguments.contenders if repeat % 2 == 0 else arguments.contenders[::-1]
        for seed in arguments.seeds:
            for contender in order:
                row = run_contender(
                    contender, arguments.data, seed, arguments.epochs, arguments.max_examples, arguments.recipe_flags
                )
                row.update(seed=seed, repeat=repeat)
                print(f"{'repeat ' + str(repeat) + ' ' if arguments.repeats > 1 else ''}seed {seed} {contender:<12} "
                      f"accuracy {row['accuracy']:.4f} {row['seconds']:7.1f} s "
                      f"{row['examples_per_second']:8.0f} examples/s {row['epochs']} epochs", flush=True)
                results[contender].append(row)
    summarize(results, arguments.data, arguments.seeds, arguments.accuracy_only)
    if arguments.json:
        with open(arguments.json, "w") as file:
            json.dump(
                {
                    "data": arguments.data, "seeds": arguments.seeds, "repeats": arguments.repeats,
                    "results": results, "provenance": provenance.describe(),
                },  # fmt: skip
                file,
                indent=2,
            )


if __name__ == "__main__":
    main()
