"""Diagnostic: the cost of a parameter-server step against a single-process step.

Trains the recipe's TextCNN on TREC, in this process, either without a strategy
or under `ParameterServerStrategy` on an in-process cluster, and prints the
training examples per second of each epoch. Validation, callbacks and the run
folder are left out, so only the training steps are compared. One setup per
run: the in-process cluster can be started once per process.

Usage:

    python benchmarks/parameter_server_overhead.py --mode default --no-ngrams
    python benchmarks/parameter_server_overhead.py --mode parameter_server --workers 1 --no-ngrams
    python benchmarks/parameter_server_overhead.py --mode parameter_server --workers 2 --steps-per-execution 32
    python benchmarks/parameter_server_overhead.py --mode parameter_server --workers 1 --profile-dir /tmp/profile_ps
    python benchmarks/parameter_server_overhead.py --mode parameter_server --workers 2 --count-worker-steps
    python benchmarks/parameter_server_overhead.py --mode parameter_server --workers 2 --no-ngrams --transfer-only

`--count-worker-steps` makes each worker count its training steps as the
recipes do (`kerastrain.distribute.worker_steps`), to measure what the count costs.

`--transfer-only` replaces the training step by one that moves what a real
step moves and computes nothing else: it reads every trainable variable (the
embeddings only at the batch's ids), and applies a zero gradient of the same
shape with the same optimizer. Under parameter servers that is the traffic
between worker and parameter server and the parameter server's updates; the
rate it reaches is a ceiling for the real step on this machine.

Results and what they show: docs/benchmarks.md and docs/design.md (what bounds
parameter servers on one machine).
"""

import argparse
import json
import os

import provenance

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREC = os.path.join(REPO, "..", "shared", "data", "trec_questions.csv.gz")


def profile_last_epoch(profile_dir, epochs):
    """A callback that records a TensorFlow profile of the last epoch into `profile_dir`."""
    from kerastrain.backend import keras, tf

    class Callback(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == epochs - 1:
                tf.profiler.experimental.start(profile_dir)

        def on_epoch_end(self, epoch, logs=None):
            if epoch == epochs - 1:
                tf.profiler.experimental.stop()

    return Callback()


def use_transfer_only_step(model):
    """Makes `model.fit` run a step that reads every variable and applies a zero gradient."""
    from kerastrain.backend import keras, tf

    embeddings = [
        (layer, model.input_names[[id(tensor) for tensor in model.inputs].index(id(layer.input))])
        for layer in model.layers
        if isinstance(layer, keras.layers.Embedding) and layer.trainable
    ]
    embedding_variables = {id(variable) for layer, _ in embeddings for variable in layer.trainable_variables}
    dense_variables = [variable for variable in model.trainable_variables if id(variable) not in embedding_variables]

    def train_step(data):
        inputs, _ = data
        with tf.GradientTape() as tape:
            total = tf.add_n(
                [tf.reduce_sum(layer(inputs[name])) for layer, name in embeddings]
                + [tf.reduce_sum(variable) for variable in dense_variables]
            )
            zero = total * 0.0
        gradients = tape.gradient(zero, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return {"zero": zero}

    model.train_step = train_step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=TREC)
    parser.add_argument("--mode", choices=("default", "parameter_server"), default="parameter_server")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ps", type=int, default=1)
    parser.add_argument("--no-ngrams", action="store_true", help="Leave out the n-gram branch (a plain TextCNN).")
    parser.add_argument("--steps-per-execution", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--profile-dir", help="Write a TensorFlow profile of the last epoch here (read it with benchmarks/op_times.py)."
    )
    parser.add_argument("--epoch-repeats", type=int, default=2, help="Passes over the training split per epoch.")
    parser.add_argument(
        "--count-worker-steps", action="store_true", help="Count each worker's steps, as the recipes do."
    )
    parser.add_argument(
        "--transfer-only", action="store_true", help="Only read the variables and apply zero gradients (no model)."
    )
    arguments = parser.parse_args()

    from kerastrain import optimizers, tf_data, training
    from kerastrain.distribute.inputs import make_training_inputs
    from kerastrain.distribute import cluster, worker_steps
    from kerastrain.backend import tf
    from kerastrain.callbacks import EpochThroughput
    from kerastrain.config import TextCNNConfig
    from kerastrain.data import load_examples, splits
    from kerastrain.recipes import textcnn

    config = TextCNNConfig(data=arguments.data, ngram_features=0 if arguments.no_ngrams else 20000)
    examples = load_examples(config.data, config.text_column, config.label_column)
    split = splits.split_as_configured(examples, config)
    class_names, train_labels, _, _ = splits.encode_labels(split)
    features = textcnn.fit_preprocessor(config, split.train)
    if arguments.mode == "parameter_server":
        resolver = cluster.start_local_cluster(arguments.workers, arguments.ps)
        strategy = tf.distribute.ParameterServerStrategy(resolver)
    else:
        strategy = tf.distribute.get_strategy()
    train = (features.transform(split.train.inputs), train_labels)
    inputs = make_training_inputs(strategy, train, train, config.batch_size, config.seed)
    with strategy.scope():
        model = textcnn.build_model(config, features, len(class_names))
        training.compile_classifier(model, optimizers.optimizer_from_config(config), arguments.steps_per_execution)
    if arguments.transfer_only:
        use_transfer_only_step(model)
    counter = None
    if arguments.count_worker_steps and arguments.mode == "parameter_server":
        counter = worker_steps.WorkerStepCounter(strategy)
        counter.count_in(model)
    throughput = EpochThroughput(inputs.examples_per_epoch * arguments.epoch_repeats)
    extra_callbacks = [profile_last_epoch(arguments.profile_dir, arguments.epochs)] if arguments.profile_dir else []
    model.fit(
        inputs.train,
        epochs=arguments.epochs,
        steps_per_epoch=inputs.steps_per_epoch * arguments.epoch_repeats,
        callbacks=[throughput, *extra_callbacks],
        verbose=0,
    )
    rates = [round(inputs.examples_per_epoch * arguments.epoch_repeats / seconds) for seconds in throughput.epoch_seconds]
    counts = {"worker_steps": counter.read()} if counter is not None else {}
    print(provenance.line())
    print(json.dumps({**vars(arguments), "examples_per_second_per_epoch": rates, **counts}))


if __name__ == "__main__":
    main()
