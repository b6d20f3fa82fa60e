"""Title: Classification with a multilayer perceptron
Description: train, evaluate and save an MLP on numeric feature columns or on text.

Usage:

    python -m kerastrain.recipes.mlp                       # scikit-learn's digits
    python -m kerastrain.recipes.mlp --data fashion-mnist.csv --hidden-units 512,256
    python -m kerastrain.recipes.mlp --data sms --text-features tfidf
    python -m kerastrain.recipes.mlp --config recipes/digits_mlp_tune.toml --tune

A CSV with a `--text-column` is read as text and turned into TF-IDF (or count,
or binary) features; otherwise every column but `--label-column` is a numeric
feature, standardized with statistics of the training split. Supported setups
are those of the TextCNN recipe.
"""

import dataclasses
import shutil
import sys
import tempfile

from kerastrain import cli
from kerastrain.config import MLPConfig


def main(config):
    """Trains, evaluates and saves an MLP as `config` says.

    Args:
        config: a validated `MLPConfig`.

    Returns:
        The test metrics written to `OUTPUT_DIR/metrics.json`.
    """
    # Setup. Only the pieces that check the run folder and the data come first:
    # TensorFlow takes seconds to import, and `--help` or bad input should not
    # wait for it.
    from kerastrain import run_folder
    from kerastrain.distribute import cluster
    from kerastrain.data import splits

    # In a parameter-server job, worker and ps tasks run this same command: they
    # serve until stopped, and only the chief goes on to train.
    if cluster.serve_if_server_task(config.strategy, config.local_cluster):
        return None
    # A job's evaluator task trains nothing: it evaluates the chief's checkpoints.
    if cluster.is_evaluator_task(config.strategy, config.local_cluster):
        from kerastrain.distribute import evaluator

        return evaluator.run_evaluator(config, recipe=sys.modules[__name__])

    # Under multi_worker_mirrored every worker trains; only the chief writes the run
    # folder, the others a temporary one that is removed at the end.
    writes_outputs = cluster.writes_outputs(config.strategy, config.local_cluster)
    if not config.output_dir:
        config = dataclasses.replace(config, output_dir="runs/mlp")
    if not writes_outputs:
        config = dataclasses.replace(config, output_dir=tempfile.mkdtemp(prefix="kerastrain-worker-"), verbose=2)
    run = run_folder.RunFolder(config.output_dir)
    run.check_config(config)
    if run.finished:
        print(f"kerastrain: {run.path} already holds this finished run; see its metrics.json")
        return run.read_json(run_folder.METRICS)

    # Load data: a stratified, seeded train/validation/test split.
    examples = load_examples(config)
    split = splits.split_as_configured(examples, config)
    class_names, train_labels, validation_labels, test_labels = splits.encode_labels(split)

    # Prepare: bag-of-words features for text, standardized columns for numbers,
    # both fitted on the training split only.
    preprocessor = fit_preprocessor(config, split.train)

    # TensorFlow starts here. The strategy comes first: it may split the CPU into
    # logical devices, which must happen before anything touches a device.
    from kerastrain import accumulation, baseline, optimizers, precision, report, tf_data, training
    from kerastrain.distribute import strategies

    strategy = strategies.build_strategy(config.strategy, config.cpu_devices, config.local_cluster)
    policy = precision.apply_precision(config.precision, config.strategy)
    jit_compile = config.jit_compile and strategies.supports_jit_compile(strategy)
    training.seed_everything(config.seed)
    environment = training.describe_environment(strategy, policy, jit_compile)
    run.create(config, environment)
    training.save_preprocessing(run, preprocessor, class_names)  # a job's evaluator reads them now
    train_features = model_inputs(preprocessor, split.train.inputs)
    print(
        f"kerastrain: {len(split.train)} train, {len(split.validation)} validation, "
        f"{len(split.test)} test examples of {examples.source}; {train_features.shape[1]} "
        f"features; {len(class_names)} classes; {policy} on {training.describe_devices(environment)}"
    )
    inputs = tf_data.make_training_inputs(
        strategy,
        train=(train_features, train_labels),
        validation=(model_inputs(preprocessor, split.validation.inputs), validation_labels),
        batch_size=config.batch_size,
        seed=config.seed,
        accumulate_steps=config.accumulate_steps,
    )
    test_dataset = tf_data.make_dataset(model_inputs(preprocessor, split.test.inputs), test_labels, config.batch_size)

    # Build the model inside the strategy's scope, so its variables are distributed.
    with strategy.scope():
        model = build_model(config, preprocessor, len(class_names))
        # With --accumulate-steps N, one update averages N micro-batches' gradients.
        model = accumulation.with_gradient_accumulation(model, config.accumulate_steps)
        optimizer = optimizers.optimizer_from_config(config)
        training.compile_classifier(
            model, optimizer, config.steps_per_execution, jit_compile, inputs.evaluation_shards
        )

    # Train, with checkpoints, early stopping and resume.
    fit_summary = training.fit(model, run, inputs, config)

    # Compare with a linear baseline on the same split (the chief alone), then
    # evaluate the best weights on the test split and save everything.
    baseline_scores = None
    if writes_outputs:
        baseline_scores = baseline.fit_and_score(split, train_labels, test_labels, len(class_names))
    metrics = training.evaluate_and_save(
        model, run, preprocessor, class_names, test_dataset, test_labels, fit_summary, baseline_scores
    )
    if not writes_outputs:
        shutil.rmtree(run.path, ignore_errors=True)
        return metrics
    report.write_report(run.path)
    print(
        f"kerastrain: test accuracy {metrics['test']['accuracy']:.4f} "
        f"({baseline_scores['accuracy']:.4f} for the linear baseline), "
        f"{metrics['examples_per_second']:.0f} examples/s; outputs and report.html in {run.path}"
    )
    return metrics


# The recipe's pieces, which `main` calls in order and `--tune` calls for each trial.


def load_examples(config):
    """The labelled texts or numeric rows that `config.data` names."""
    from kerastrain import data

    return data.load_examples(config.data, config.text_column, config.label_column, allow_numeric=True)


def fit_preprocessor(config, train_examples):
    """Bag-of-words features for text, standardized columns for numbers, fitted on the training split.

    The scaler is fitted on named columns, so that prediction picks a CSV's
    columns by name (`feature_names_in_`) whatever their order.
    """
    import pandas as pd
    from sklearn import preprocessing

    from kerastrain.text_vectorization import TextVectorizer

    if train_examples.is_text:
        preprocessor = TextVectorizer(
            config.text_features, max_tokens=config.max_features, ngram_range=(1, config.ngram_max)
        )
        return preprocessor.fit(train_examples.inputs)
    return preprocessing.StandardScaler().fit(
        pd.DataFrame(train_examples.inputs, columns=train_examples.feature_names)
    )


def model_inputs(preprocessor, inputs):
    """The model's float32 feature matrix for `inputs` (texts, or rows of feature values).

    Rows given as an array are taken to be in the training columns' order.
    """
    import pandas as pd

    names = getattr(preprocessor, "feature_names_in_", None)
    if names is not None and not isinstance(inputs, pd.DataFrame):
        inputs = pd.DataFrame(inputs, columns=names)
    return preprocessor.transform(inputs).astype("float32")


def training_length_buckets(config, train_inputs):
    """`None`: the MLP's features have no padding to cut (see the TextCNN recipe)."""
    return None


def build_model(config, preprocessor, num_classes):
    """The MLP, uncompiled, with one input per feature of the fitted `preprocessor`."""
    from kerastrain.models import build_mlp

    text = hasattr(preprocessor, "vocabulary_size")
    return build_mlp(
        input_dim=preprocessor.vocabulary_size if text else preprocessor.n_features_in_,
        num_classes=num_classes,
        hidden_units=config.hidden_units,
        activation=config.activation,
        initializer=config.initializer,
        batch_normalization=config.batch_normalization,
        dropout=config.dropout,
        l1=config.l1,
        l2=config.l2,
    )


def parse_and_run(argv=None):
    command = cli.parse_command(
        MLPConfig, argv, prog="python -m kerastrain.recipes.mlp", description=__doc__.split("\n")[1]
    )
    config = command.config
    if command.search_space:
        # Search the [tune] table's values, then train the best config in the same folder.
        from kerastrain.search import tuning

        config = tuning.search(config, command.search_space, recipe=sys.modules[__name__])
    if config is not None:  # None: the folder holds the model of an earlier best config
        main(config)


if __name__ == "__main__":
    cli.run_entry_point(parse_and_run, sys.argv[1:])
