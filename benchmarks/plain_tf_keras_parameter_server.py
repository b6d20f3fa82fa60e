"""Benchmark: a plain tf-keras TextCNN, in one process and on in-process parameter servers.

A reference for the parameter-server ratio of kerastrain's recipe, written without
kerastrain: a `TextVectorization` layer,
`Dataset.from_tensor_slices(...).shuffle().repeat().batch()`, an embedding, three
convolutions with global max pooling, and `Model.fit` with `steps_per_execution`. Under parameter servers the same model trains on an in-process
cluster of real gRPC servers (2 workers, 1 parameter server) through a
`DatasetCreator`. Each run is a separate process (TensorFlow servers live until
their process ends), and the two setups alternate, so that a change in the machine's
load hits both.

Usage:

    python benchmarks/plain_tf_keras_parameter_server.py ../shared/data/trec_questions.csv.gz
    python benchmarks/plain_tf_keras_parameter_server.py DATA.csv --batch-size 256 --repeats 3
    TF_CPU_ALLOCATOR_USE_BFC=true python benchmarks/plain_tf_keras_parameter_server.py DATA.csv

The last line gives both setups TensorFlow's BFC allocator for CPU tensors, which
kerastrain turns on (see docs/design.md); plain TensorFlow does not.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import provenance

SETUPS = ("single_process", "parameter_server")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def parameter_server_strategy(tf, workers):
    """`ParameterServerStrategy` on `workers` workers and 1 parameter server in this process."""
    cluster_spec = tf.train.ClusterSpec(
        {"worker": [f"localhost:{free_port()}" for _ in range(workers)], "ps": [f"localhost:{free_port()}"]}
    )
    worker_config = tf.compat.v1.ConfigProto()
    # Each worker runs a step and answers RPCs at once; on 2 cores, TensorFlow's
    # default of 2 inter-op threads deadlocks the in-process workers.
    worker_config.inter_op_parallelism_threads = max(workers + 1, os.cpu_count() or 1)
    for index in range(workers):
        tf.distribute.Server(cluster_spec, job_name="worker", task_index=index, config=worker_config, protocol="grpc")
    tf.distribute.Server(cluster_spec, job_name="ps", task_index=0, protocol="grpc")
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(cluster_spec, rpc_layer="grpc")
    return tf.distribute.ParameterServerStrategy(resolver)


def train_once(arguments):
    """Trains in this process and prints one JSON line with each epoch's examples per second."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import numpy as np
    import pandas as pd
    import tensorflow as tf
    import tf_keras as keras

    tf.random.set_seed(arguments.seed)
    table = pd.read_csv(arguments.data)
    texts = np.array(table[arguments.text_column].astype(str).tolist(), dtype=object)
    labels = pd.factorize(table[arguments.label_column])[0].astype("int32")
    vectorizer = keras.layers.TextVectorization(max_tokens=20000, output_sequence_length=arguments.sequence_length)
    vectorizer.adapt(texts)
    token_ids = vectorizer(texts).numpy()
    steps_per_epoch = -(-len(token_ids) // arguments.batch_size)

    def make_dataset(input_context=None):
        dataset = tf.data.Dataset.from_tensor_slices((token_ids, labels))
        return dataset.shuffle(len(token_ids)).repeat().batch(arguments.batch_size).prefetch(2)

    if arguments.setup == "parameter_server":
        strategy = parameter_server_strategy(tf, arguments.workers)
        training_data = keras.utils.experimental.DatasetCreator(make_dataset)
    else:
        strategy = tf.distribute.get_strategy()
        training_data = make_dataset()
    with strategy.scope():
        tokens = keras.Input(shape=(arguments.sequence_length,), dtype="int64")
        embedded = keras.layers.Embedding(20000, 128)(tokens)
        pooled = [
            keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(128, width, activation="relu")(embedded))
            for width in (3, 4, 5)
        ]
        features = keras.layers.Dropout(0.5)(keras.layers.Concatenate()(pooled))
        probabilities = keras.layers.Dense(labels.max() + 1, activation="softmax")(features)
        model = keras.Model(tokens, probabilities)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=arguments.steps_per_execution,
        )

    epoch_seconds = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.start)

    model.fit(
        training_data, epochs=arguments.epochs, steps_per_epoch=steps_per_epoch, callbacks=[EpochTimer()], verbose=0
    )
    examples = steps_per_epoch * arguments.batch_size
    print(json.dumps({"examples_per_second": [examples / seconds for seconds in epoch_seconds]}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="A CSV (.csv or .csv.gz) with text and label columns.")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--sequence-length", type=int, default=16, help="Padded length (TREC's 95th percentile: 16).")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps-per-execution", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="Runs of each setup, alternating.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--setup", choices=SETUPS, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.setup:
        train_once(arguments)
        return
    print(provenance.line(), flush=True)
    rates = {setup: [] for setup in SETUPS}
    for repeat in range(arguments.repeats):
        for setup in SETUPS:
            command = [sys.executable, os.path.abspath(__file__), *sys.argv[1:], "--setup", setup]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"{setup} failed:\n{result.stderr[-3000:]}")
            epochs = json.loads(result.stdout.strip().splitlines()[-1])["examples_per_second"]
            rates[setup].extend(epochs[1:])  # The first epoch traces, compiles and starts the cluster.
            print(f"{setup}, run {repeat + 1}, epochs after the first: {[round(rate) for rate in epochs[1:]]}", flush=True)
    allocator = "BFC" if os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").lower() in ("1", "true") else "default"
    single, parameter_server = (statistics.median(rates[setup]) for setup in SETUPS)
    print(
        f"\nbatch {arguments.batch_size}, length {arguments.sequence_length}, steps_per_execution "
        f"{arguments.steps_per_execution}, {arguments.workers} workers, {allocator} CPU allocator: "
        f"median examples/s after epoch 1: single process {single:.0f}, parameter servers {parameter_server:.0f}, "
        f"ratio {parameter_server / single:.2f}x"
    )


if __name__ == "__main__":
    main()
