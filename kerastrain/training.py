"""Steps that every recipe shares once its data and model are ready."""

import platform
import time

import joblib

from kerastrain import callbacks as callbacks_lib
from kerastrain import evaluation, run_folder
from kerastrain.backend import keras, tf


def seed_everything(seed):
    """Seeds Python's, NumPy's and TensorFlow's random generators."""
    keras.utils.set_random_seed(seed)


def describe_environment(strategy, policy, jit_compile):
    """Versions, devices, strategy and precision, for `config.json` and reports."""
    return {
        "jit_compile": jit_compile,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "devices": [device.name for device in tf.config.list_logical_devices()],
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "precision": policy,
    }


def compile_classifier(model, optimizer, steps_per_execution=1, jit_compile=False):
    """Compiles a softmax classifier on integer labels, with accuracy."""
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model


def fit(model, run, train_dataset, validation_dataset, config, train_examples):
    """Trains with the standard callbacks; resumes if the run was interrupted.

    Returns:
        A dict with `train_seconds`, `epochs_run` (by this call) and
        `examples_per_second`.
    """
    callbacks = callbacks_lib.standard_callbacks(
        run,
        examples_per_epoch=train_examples,
        early_stopping_patience=config.early_stopping_patience,
        tensorboard=config.tensorboard,
    )
    start = time.perf_counter()
    model.fit(
        train_dataset,
        validation_data=validation_dataset,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=config.verbose,
    )
    train_seconds = time.perf_counter() - start
    epoch_seconds = callbacks[0].epoch_seconds
    examples_per_second = train_examples * len(epoch_seconds) / sum(epoch_seconds) if epoch_seconds else 0.0
    return {
        "train_seconds": train_seconds,
        "epochs_run": len(epoch_seconds),
        "examples_per_second": examples_per_second,
    }


def evaluate_and_save(model, run, preprocessor, class_names, test_dataset, test_label_ids, fit_summary):
    """Restores the best weights, evaluates on the test split and writes the run's outputs.

    Writes `model.keras`, `preprocessor.joblib`, `classes.json`,
    `classification_report.txt`, `confusion_matrix.png` and, last (it marks the
    run finished), `metrics.json`.

    Returns:
        The metrics dict written to `metrics.json`.
    """
    if run.exists(run_folder.BEST_WEIGHTS):
        model.load_weights(run.file(run_folder.BEST_WEIGHTS))
    results = evaluation.evaluate(model, test_dataset, test_label_ids, class_names)
    evaluation.write_evaluation(results, class_names, run)
    model.save(run.file(run_folder.MODEL))
    joblib.dump(preprocessor, run.file(run_folder.PREPROCESSOR))
    run.write_json(run_folder.CLASSES, list(class_names))
    history = run.read_history()
    metrics = {
        "test": {key: results[key] for key in ("accuracy", "loss", "macro_f1")},
        "validation": {
            "best_loss": float(history["val_loss"].min()) if "val_loss" in history else None,
            "best_accuracy": float(history["val_accuracy"].max()) if "val_accuracy" in history else None,
        },
        "epochs": int(len(history)),
        **fit_summary,
    }
    run.write_json(run_folder.METRICS, metrics)
    return metrics

