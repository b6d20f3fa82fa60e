"""Post-training quantization of a finished run, with size and test accuracy before and after.

Usage:

    python -m kerastrain.export.compress runs/textcnn                     # int8 weights
    python -m kerastrain.export.compress runs/mlp --method float16

The run's test split is recreated from its `config.json` (same data, seed and
fractions give the same split); the original model and the quantized LiteRT
model are scored on it. Outputs go to `RUN_DIR/compressed/`: the model as
`model_METHOD.tflite` and `compression.json` with sizes and metrics of every
method run so far. The run's own files are only read.
"""

import argparse
import os
import sys

from kerastrain import cli, files, run_folder
from kerastrain.export import litert
from kerastrain.errors import UsageError

COMPRESSED_FOLDER = "compressed"
REPORT = "compression.json"


def check_run(path):
    """The `RunFolder` at `path`, if it holds a finished run.

    Raises:
        UsageError: if `path` is no folder or its run has not finished.
    """
    if not os.path.isdir(path):
        raise UsageError(f"{path}: no such folder. Pass the --output-dir of a finished training run.")
    run = run_folder.RunFolder(path)
    if not run.finished or not run.exists(run_folder.CONFIG):
        missing = run_folder.CONFIG if not run.exists(run_folder.CONFIG) else run_folder.METRICS
        raise UsageError(
            f"{path} holds no finished run ({missing} is missing). Pass the --output-dir of a "
            "training run that has finished, or rerun its training command to finish it."
        )
    return run


def recipe_of_run(run):
    """The `Recipe` that trained the run in `run` (read from its `config.json`)."""
    from kerastrain.recipes import find_recipe

    stored = run.read_json(run_folder.CONFIG)
    # Run folders of kerastrain 0.1 do not name their recipe; only the TextCNN has kernel sizes.
    name = stored.get("recipe") or ("textcnn" if "kernel_sizes" in stored["config"] else "mlp")
    return find_recipe(name)


def load_test_split(run, recipe):
    """The run's test inputs and class ids, recreated from its `config.json`.

    The same data, seed and fractions give the same split.

    Returns:
        A tuple `(test_examples, class_names, test_label_ids)`.

    Raises:
        UsageError: if the run's data cannot be loaded again, or has changed
            since training (`config.json` records its fingerprint).
    """
    from kerastrain import pipeline

    from kerastrain.api import IN_MEMORY_DATA

    stored = run.read_json(run_folder.CONFIG)
    config = recipe.config_class.from_dict(stored["config"])
    if config.data in IN_MEMORY_DATA:
        raise UsageError(
            f"{run.path} was trained on {IN_MEMORY_DATA[config.data]}, which kerastrain cannot load again to "
            "score it. Train on a CSV file to compress the run."
        )
    try:
        data = pipeline.load_data(recipe, config)
    except UsageError as error:
        raise UsageError(f"Cannot recreate the test split of {run.path}: {error}") from None
    recorded = stored.get("data", {}).get("fingerprint")
    if recorded is not None and recorded != run_folder.fingerprint_examples(data.examples):
        raise UsageError(
            f"The data of {run.path}, {config.data}, has changed since training: its test split would not be "
            "the one the run was scored on. Restore the training data to compress the run."
        )
    return data.split.test, data.class_names, data.test_labels


def score(probabilities, label_ids, class_names):
    from kerastrain import evaluation

    metrics = evaluation.score_probabilities(probabilities, label_ids, class_names)
    return {name: metrics[name] for name in ("accuracy", "macro_f1", "loss")}


def compress_run(run, method, recipe=None):
    """Quantizes the run's model, scores both on its test split and writes the results.

    Args:
        run: a `RunFolder` holding a finished run.
        method: a key of `litert.METHODS`.
        recipe: the `Recipe` that trained it. Defaults to `None` (read from
            the run's `config.json`).

    Returns:
        The report written to `RUN_DIR/compressed/compression.json`.

    Raises:
        UsageError: if the run's data cannot be loaded, or has other classes now.
    """
    test, class_names, test_labels = load_test_split(run, recipe or recipe_of_run(run))

    # TensorFlow starts here.
    from kerastrain.export.predict import Predictor

    predictor = Predictor.load(run.path)
    if class_names != predictor.class_names:
        raise UsageError(
            f"The data of {run.path} now has the classes {class_names}, not {predictor.class_names} "
            "as in training. Restore the training data to compare on its test split."
        )
    features = predictor.features(test.inputs)
    model = predictor.model
    original = score(model.predict(features, batch_size=256, verbose=0), test_labels, class_names)
    recorded = run.read_json(run_folder.METRICS).get("test", {}).get("accuracy")
    if recorded is not None and abs(recorded - original["accuracy"]) > 1e-9:
        print(
            f"kerastrain: warning: test accuracy {original['accuracy']:.4f} here, {recorded:.4f} in "
            f"{run_folder.METRICS}; the data may have changed since training",
            file=sys.stderr,
        )

    content = litert.convert(model, method)
    compressed = score(litert.LiteClassifier(content).predict_proba(features), test_labels, class_names)

    output = run_folder.RunFolder(run.file(COMPRESSED_FOLDER))
    os.makedirs(output.path, exist_ok=True)
    model_name = f"model_{method}.tflite"
    temporary = output.file(model_name + ".tmp")
    with open(temporary, "wb") as file:
        file.write(content)
    os.replace(temporary, output.file(model_name))

    # Methods compressed earlier keep their rows.
    results = output.read_json(REPORT).get("compressed", {}) if output.exists(REPORT) else {}
    results[method] = {
        "file": model_name,
        "file_bytes": len(content),
        "description": litert.METHODS[method],
        "test": compressed,
    }
    report = {
        "test_examples": len(test_labels),
        "original": {
            "file": run_folder.MODEL,
            "file_bytes": os.path.getsize(run.file(run_folder.MODEL)),
            "parameters": int(model.count_params()),
            "weights_bytes": int(sum(weight.nbytes for weight in model.get_weights())),
            "test": original,
        },
        "compressed": results,
    }
    output.write_json(REPORT, report)
    return report


def format_table(report):
    """The report as a small text table, one row per model."""
    original = report["original"]
    rows = [
        (f"{original['file']} (with optimizer state)", original["file_bytes"], None),
        ("float32 weights", original["weights_bytes"], original["test"]),
    ]
    for method, result in report["compressed"].items():
        rows.append((f"{method} ({result['file']})", result["file_bytes"], result["test"]))
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'model':<{width}}  {'bytes':>10}  {'accuracy':>8}  {'macro F1':>8}"]
    for name, size, metrics in rows:
        scores = f"{metrics['accuracy']:>8.4f}  {metrics['macro_f1']:>8.4f}" if metrics else f"{'':>8}  {'':>8}"
        lines.append(f"{name:<{width}}  {size:>10,}  {scores}")
    return "\n".join(lines)


def main(argv=None, prog="kerastrain compress"):
    """`kerastrain compress RUN_DIR [--method METHOD]`."""
    methods = "\n".join(f"  {name}: {description}" for name, description in litert.METHODS.items())
    parser = cli.OneLineErrorParser(
        prog=prog,
        description="Quantize a finished run's model after training and compare size and test accuracy.",
        epilog=f"methods:\n{methods}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", help="The --output-dir of a finished training run.")
    parser.add_argument(
        "--method", default="dynamic_int8", choices=list(litert.METHODS), help="How to quantize (default: dynamic_int8)."
    )
    parser.add_argument("--debug", action="store_true", help="Show the full traceback of an error.")
    arguments = parser.parse_args(argv)
    run = check_run(arguments.run_dir)
    files.check_writable_folder(run.file(COMPRESSED_FOLDER), "RUN_DIR")  # before minutes of quantizing
    litert.require_interpreter()
    report = compress_run(run, arguments.method)
    print(format_table(report))
    print(
        f"kerastrain: {report['test_examples']} test examples; "
        f"wrote {os.path.join(run.file(COMPRESSED_FOLDER), report['compressed'][arguments.method]['file'])}"
    )


if __name__ == "__main__":
    cli.run_entry_point(main, sys.argv[1:])
