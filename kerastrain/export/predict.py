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

import numpy as np

from kerastrain import cli, run_folder
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
            UsageError: if `path` holds no finished run.
        """
        from kerastrain import models  # noqa: F401  registers the custom layers for loading
        from kerastrain.backend import keras

        run = run_folder.RunFolder(path)
        missing = [
            name for name in (run_folder.MODEL, run_folder.PREPROCESSOR, run_folder.CLASSES) if not run.exists(name)
        ]
        if missing:
            raise UsageError(
                f"{path} holds no finished run ({missing[0]} is missing). Pass the --output-dir "
                "of a training run that has finished."
            )
        model = keras.models.load_model(run.file(run_folder.MODEL))
        return cls(model, run.load_preprocessor(), run.read_json(run_folder.CLASSES))

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


def read_inputs(predictor, csv_path, text_column, label_column):
    """The rows of `csv_path` and the raw inputs the predictor takes from them.

    Returns:
        A tuple `(frame, inputs)`: the CSV as a DataFrame, and its texts, or
        its feature columns by the names the model was trained on.
    """
    from kerastrain.data import tables

    frame = tables.read_csv(csv_path, "--csv")
    if predictor.takes_text:
        tables.require_column(frame, text_column, "--text-column", csv_path)
        return frame, frame[text_column].fillna("").astype(str).tolist()
    missing = [name for name in predictor.preprocessor.feature_names if name not in frame.columns]
    if missing:
        raise UsageError(
            f"{csv_path} lacks feature column {missing[0]!r} that the model was trained on. "
            "Pass a CSV with the training columns."
        )
    return frame, frame[predictor.preprocessor.feature_names]


def main(argv=None):
    parser = cli.OneLineErrorParser(
        prog="python -m kerastrain.export.predict",
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
    if not os.path.isdir(arguments.run_dir):
        raise UsageError(f"{arguments.run_dir}: no such folder. Pass the --output-dir of a training run.")
    predictor = Predictor.load(arguments.run_dir)
    if arguments.text:
        if not predictor.takes_text:
            raise UsageError(f"{arguments.run_dir} was trained on numeric features. Pass them with --csv.")
        for text, label in zip(arguments.text, predictor.predict(arguments.text)):
            print(json.dumps({"text": text, "prediction": label}))
        return
    frame, inputs = read_inputs(predictor, arguments.csv, arguments.text_column, arguments.label_column)
    frame["prediction"] = predictor.predict(inputs)
    if arguments.output:
        frame.to_csv(arguments.output, index=False)
        print(f"kerastrain: wrote {len(frame)} predictions to {arguments.output}")
    else:
        frame.to_csv(sys.stdout, index=False)


if __name__ == "__main__":
    cli.run_entry_point(main, sys.argv[1:])
