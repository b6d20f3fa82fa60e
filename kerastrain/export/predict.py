"""Predictions from a finished run folder, on raw text or a CSV.

Usage:

    python -m kerastrain.export.predict runs/textcnn --text "WINNER! Claim your prize" --text "see you at 6"
    python -m kerastrain.export.predict runs/textcnn --csv new_messages.csv --output predictions.csv

From Python:

```python
predictor = Predictor.load("runs/textcnn")
predictor.predict(["WINNER! Claim your prize"])  # ["spam"]
```

A run folder's `preprocessor.joblib` is a pickle: load only run folders you trust.
"""

import json
import os
import sys
import zipfile

import numpy as np

from kerastrain import cli, files, run_folder
from kerastrain.errors import UsageError


class Predictor:
    """A trained model with the preprocessor and class names of its run.

    Args:
        model: the trained `keras.Model`.
        preprocessor: the fitted vectorizer or scaler of the run.
        class_names: the class names, in output order.
    """

    def __init__(self, model, preprocessor, class_names):
        self.model = model
        self.preprocessor = preprocessor
        self.class_names = list(class_names)

    @classmethod
    def load(cls, path):
        """Loads the predictor saved in the run folder `path`.

        Raises:
            UsageError: if `path` holds no finished run, or one of its files
                cannot be loaded.
        """
        preprocessor, class_names = load_preprocessing(path)
        return cls(load_model(path), preprocessor, class_names)

    @property
    def takes_text(self):
        """Whether the model's raw inputs are texts (else rows of numeric features)."""
        return self.preprocessor.takes_text

    def features(self, inputs):
        """The model's inputs for raw inputs (texts, or rows of feature values)."""
        if isinstance(inputs, str):
            inputs = [inputs]
        return self.preprocessor.model_inputs(inputs)

    def predict_proba(self, inputs):
        """Class probabilities, one row per input (texts, or rows of feature values)."""
        return self.model.predict(self.features(inputs), verbose=0)

    def predict(self, inputs):
        """The most probable class name of each input."""
        probabilities = self.predict_proba(inputs)
        return [self.class_names[index] for index in np.argmax(probabilities, axis=1)]


def check_finished(path):
    """The `RunFolder` at `path`, which must hold a model, its preprocessor and its classes."""
    run = run_folder.RunFolder(path)
    missing = [
        name for name in (run_folder.MODEL, run_folder.PREPROCESSOR, run_folder.CLASSES) if not run.exists(name)
    ]
    if missing:
        raise UsageError(
            f"{path} holds no finished run ({missing[0]} is missing). Pass the --output-dir "
            "of a training run that has finished."
        )
    return run


def load_preprocessing(path):
    """The fitted preprocessor and class names of a finished run, without starting TensorFlow.

    Raises:
        UsageError: if the run is not finished, or a file cannot be loaded.
    """
    run = check_finished(path)
    try:
        preprocessor = run.load_preprocessor()
    except Exception as error:  # unpickling raises whatever a damaged or foreign file makes it raise
        raise unloadable(path, run_folder.PREPROCESSOR, error) from None
    try:
        class_names = run.read_json(run_folder.CLASSES)
    except (OSError, ValueError) as error:
        raise unloadable(path, run_folder.CLASSES, error) from None
    return preprocessor, class_names


def load_model(path):
    """The trained `keras.Model` of a finished run (this starts TensorFlow).

    Raises:
        UsageError: if the run is not finished, or its model cannot be loaded.
    """
    from kerastrain import models  # noqa: F401  registers the custom layers for loading
    from kerastrain.backend import keras

    try:
        return keras.models.load_model(check_finished(path).file(run_folder.MODEL))
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise unloadable(path, run_folder.MODEL, error) from None


def unloadable(path, name, error):
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return UsageError(
        f"{os.path.join(path, name)} cannot be loaded ({reason}). Train the run again, or pass another run folder."
    )


def read_inputs(preprocessor, csv_path, text_column, label_column=None, frame=None):
    """The rows of a CSV to classify, as the run's preprocessor takes them.

    A row without a text (or, for numeric features, with a missing or infinite
    value) cannot be classified like the training rows, which had none: it is
    left out of `inputs`, and `usable` marks the rows that are in it.

    Args:
        preprocessor: the run's fitted preprocessor.
        csv_path: the CSV's path.
        text_column: the column of the texts, for a text model.
        label_column: unused: numeric features are picked by the names the
            model was trained on. Defaults to `None`.
        frame: the CSV, if already read. Defaults to `None`, which reads it.

    Returns:
        A tuple `(frame, inputs, usable)`: the CSV as a DataFrame, the inputs of
        the usable rows (texts, or a DataFrame of the training columns), and a
        boolean array with one entry per row.

    Raises:
        UsageError: if the CSV is unreadable, lacks a column the run needs, or
            holds a value that is not a number in a feature column.
    """
    import pandas as pd

    from kerastrain.data import tables

    if frame is None:
        frame = tables.read_csv(csv_path, "--csv")
    if preprocessor.takes_text:
        text_column = text_column.strip()
        tables.require_column(frame, text_column, "--text-column", csv_path)
        texts = frame[text_column]
        usable = (texts.notna() & texts.astype(str).str.strip().ne("")).to_numpy()
        return frame, texts[usable].astype(str).tolist(), usable
    names = preprocessor.feature_names
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise UsageError(
            f"{csv_path} lacks feature column {missing[0]!r} that the model was trained on. "
            "Pass a CSV with the training columns."
        )
    values = tables.numeric_values(frame[names], csv_path)
    usable = np.isfinite(values).all(axis=1)
    return frame, pd.DataFrame(values[usable], columns=names), usable


def main(argv=None, prog="kerastrain predict"):
    """`kerastrain predict RUN_DIR (--text TEXT ... | --csv FILE [--output FILE])`."""
    parser = cli.OneLineErrorParser(
        prog=prog,
        description="Classify raw text, or the rows of a CSV, with a finished kerastrain run.",
    )
    parser.add_argument("run_dir", help="The --output-dir of a finished training run.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", help="A text to classify; repeat for more.")
    source.add_argument("--csv", help="A CSV (.csv or .csv.gz) whose rows to classify.")
    parser.add_argument("--text-column", default="text", help="Text column of --csv (default: text).")
    parser.add_argument("--label-column", default="label", help="Column of --csv to ignore (default: label).")
    parser.add_argument("--output", help="Write the CSV with a `prediction` column here instead of printing.")
    parser.add_argument("--debug", action="store_true", help="Show the full traceback of an error.")
    arguments = parser.parse_args(argv)
    # Everything that can be checked is checked before TensorFlow starts.
    if os.path.isfile(arguments.run_dir):
        raise UsageError(f"{arguments.run_dir} is a file, not a run folder. Pass the --output-dir of a training run.")
    if not os.path.isdir(arguments.run_dir):
        raise UsageError(f"{arguments.run_dir}: no such folder. Pass the --output-dir of a training run.")
    if arguments.text is not None:
        empty = [text for text in arguments.text if not text.strip()]
        if empty:
            raise UsageError(
                f"--text {empty[0]!r} is empty, and the model was trained on texts with words only "
                "(training leaves empty texts out). Pass a text to classify."
            )
    if arguments.output is not None:  # an empty --output ("$OUT" unset) is refused, not taken for stdout
        files.check_writable_file(
            arguments.output, "--output", protected=[arguments.run_dir, arguments.csv], example_name="predictions.csv"
        )
    frame = None
    if arguments.csv:
        from kerastrain.data import tables

        frame = tables.read_csv(arguments.csv, "--csv")  # before scikit-learn loads with the preprocessor
    preprocessor, class_names = load_preprocessing(arguments.run_dir)
    if arguments.text:
        if not preprocessor.takes_text:
            raise UsageError(f"{arguments.run_dir} was trained on numeric features. Pass them with --csv.")
        predictor = Predictor(load_model(arguments.run_dir), preprocessor, class_names)
        for text, label in zip(arguments.text, predictor.predict(arguments.text)):
            print(json.dumps({"text": text, "prediction": label}))
        return
    frame, inputs, usable = read_inputs(preprocessor, arguments.csv, arguments.text_column, frame=frame)
    predictions = np.full(len(frame), "", dtype=object)
    if usable.any():
        predictor = Predictor(load_model(arguments.run_dir), preprocessor, class_names)
        predictions[usable] = predictor.predict(inputs)
    left_out = int((~usable).sum())
    if left_out:
        reason = "no text" if preprocessor.takes_text else "a missing or infinite feature value"
        print(
            f"kerastrain: {left_out} rows of {arguments.csv} have {reason}; their prediction is left empty",
            file=sys.stderr,
        )
    frame["prediction"] = predictions
    if arguments.output:
        frame.to_csv(arguments.output, index=False)
        print(f"kerastrain: wrote {len(frame)} predictions to {arguments.output}")
    else:
        frame.to_csv(sys.stdout, index=False)


if __name__ == "__main__":
    cli.run_entry_point(main, sys.argv[1:])
