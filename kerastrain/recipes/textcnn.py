"""Title: Text classification with a TextCNN
Description: train, evaluate and save a TextCNN (Kim 2014) on a CSV of texts.

Usage:

    python -m kerastrain.recipes.textcnn                  # bundled SMS spam data
    python -m kerastrain.recipes.textcnn --data reviews.csv.gz --epochs 5
    python -m kerastrain.recipes.textcnn --config recipes/sms_textcnn.toml
    python -m kerastrain.recipes.textcnn --config recipes/sms_textcnn_tune.toml --tune

Supported setups: one CPU or GPU (`--strategy default`), one pinned device
(`one_device`), and synchronous data parallelism over local GPUs or logical CPUs
(`mirrored --cpu-devices 2`). Rerunning a command resumes its interrupted run.
"""

import dataclasses
import shutil
import sys
import tempfile

from kerastrain import cli
from kerastrain.config import TextCNNConfig


def main(config):
    """Trains, evaluates and saves a TextCNN as `config` says.

    Args:
        config: a validated `TextCNNConfig`.

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
        config = dataclasses.replace(config, output_dir="runs/textcnn")
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

    # Prepare: token ids for the convolutions and, optionally, n-gram ids for the
    # linear branch, both fitted on the training split only.
    features = fit_preprocessor(config, split.train)

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
    training.save_preprocessing(run, features, class_names)  # a job's evaluator reads them now
    print(
        f"kerastrain: {len(split.train)} train, {len(split.validation)} validation, "
        f"{len(split.test)} test examples of {examples.source}; {len(class_names)} classes; "
        f"{policy} on {training.describe_devices(environment)}; {features.describe()}"
    )
    train_inputs = features.transform(split.train.inputs)
    inputs = tf_data.make_training_inputs(
        strategy,
        train=(train_inputs, train_labels),
        validation=(features.transform(split.validation.inputs), validation_labels),
        batch_size=config.batch_size,
        seed=config.seed,
        accumulate_steps=config.accumulate_steps,
        length_buckets=training_length_buckets(config, train_inputs),
    )
    test_dataset = tf_data.make_dataset(features.transform(split.test.inputs), test_labels, config.batch_size)

    # Build the model inside the strategy's scope, so its variables are distributed.
    with strategy.scope():
        model = build_model(config, features, len(class_names))
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
        model, run, features, class_names, test_dataset, test_labels, fit_summary, baseline_scores
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
    """The labelled texts that `config.data` names."""
    from kerastrain import data

    return data.load_examples(config.data, config.text_column, config.label_column)


def fit_preprocessor(config, train_examples):
    """Token ids for the convolutions and, optionally, n-gram ids, fitted on the training split.

    With `config.ngram_weighting == "nb"` the n-gram vectorizer also learns each
    n-gram's naive-Bayes log-count ratio per class from the training labels.
    With `config.embeddings` the fitted features also carry the word vectors of
    the token vocabulary, transiently: they go into the model's weights, not
    into the pickled preprocessor.

    Args:
        config: a `TextCNNConfig`.
        train_examples: the training split, an `Examples`.

    Returns:
        A fitted `TextFeatures` with inputs `"tokens"` and, with
        `config.ngram_features`, `"ngrams"`; its `describe()` is a line for the log.
    """
    from kerastrain.text_vectorization import TextFeatures, TextVectorizer

    vectorizers = {
        "tokens": TextVectorizer(
            "sequences",
            max_tokens=config.max_tokens,
            sequence_length=config.sequence_length,
            min_sequence_length=max(config.kernel_sizes),
            lowercase=config.lowercase,
        )
    }
    if config.ngram_features:
        naive_bayes = config.ngram_weighting == "nb"
        vectorizers["ngrams"] = TextVectorizer(
            "sequences",
            max_tokens=config.ngram_features,
            ngram_range=(1, config.ngram_max),
            lowercase=config.lowercase,
            binary=naive_bayes,
            log_count_ratios=naive_bayes,
        )
    features = TextFeatures(vectorizers).fit(train_examples.inputs, train_examples.labels)
    if config.embeddings:
        from kerastrain import embeddings

        tokens = features.vectorizers["tokens"]
        features.set_embedding_matrix(
            embeddings.load_embedding_matrix(
                config.embeddings,
                tokens.vocabulary_,
                config.embedding_dim,
                seed=config.seed,
                match_lowercase=config.lowercase,
            )
        )
    return features


def model_inputs(features, texts):
    """The model's named inputs for `texts`."""
    return features.transform(texts)


def training_length_buckets(config, train_inputs):
    """Length buckets of the padded token ids (and n-gram ids) of the training split.

    Returns:
        A `LengthBuckets`, or `None` with `--no-length-buckets`.
    """
    from kerastrain.length_buckets import LengthBuckets

    if not config.length_buckets:
        return None
    minimum_lengths = {"tokens": max(config.kernel_sizes)}
    if "ngrams" in train_inputs:
        minimum_lengths["ngrams"] = 1
    return LengthBuckets.for_padded_inputs(train_inputs, minimum_lengths)


def build_model(config, features, num_classes):
    """The TextCNN, uncompiled, sized by the fitted `features`."""
    from kerastrain.models import build_textcnn

    tokens = features.vectorizers["tokens"]
    ngrams = features.vectorizers.get("ngrams")
    ngram_weights = None
    if ngrams is not None:
        ngram_weights = ngrams.log_count_ratios_ if ngrams.log_count_ratios else ngrams.idf_
    return build_textcnn(
        vocabulary_size=tokens.vocabulary_size,
        sequence_length=tokens.sequence_length_,
        num_classes=num_classes,
        embedding_dim=config.embedding_dim,
        filters=config.filters,
        kernel_sizes=config.kernel_sizes,
        dropout=config.dropout,
        l2=config.l2,
        ngram_vocabulary_size=ngrams.vocabulary_size if ngrams else 0,
        ngram_sequence_length=ngrams.sequence_length_ if ngrams else 0,
        ngram_embedding_dim=config.ngram_embedding_dim,
        ngram_weights=ngram_weights,
        # `None` in a preprocessor read back from a run folder: the trained
        # weights, restored next, hold the vectors.
        embedding_matrix=getattr(features, "embedding_matrix_", None),
        embedding_trainable=config.embeddings_trainable,
    )


def parse_and_run(argv=None):
    command = cli.parse_command(
        TextCNNConfig, argv, prog="python -m kerastrain.recipes.textcnn", description=__doc__.split("\n")[1]
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
