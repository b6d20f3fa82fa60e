"""Diagnostic: what the epoch checkpoints of a TF_CONFIG job's chief cost, against the epoch itself.

The chief of every TF_CONFIG job writes a TensorFlow checkpoint of the model's
weights after each epoch and keeps the last five, for an evaluator task that it
may not see (`callbacks.EpochCheckpoint`). This trains the recipe's TextCNN on
the bundled SMS data with that callback, in this process, without a strategy or
under `ParameterServerStrategy` on an in-process cluster, and prints per epoch
the seconds of the epoch (training and validation) and of its checkpoint, their
ratio, and the size of one checkpoint. The first epoch (tracing) is left out of
the medians.

Usage (on a quiet machine; one setup per run, as the in-process cluster can be
started once per process):

    python benchmarks/epoch_checkpoint_cost.py --mode default
    python benchmarks/epoch_checkpoint_cost.py --mode parameter_server --workers 2
"""

import argparse
import json
import os
import statistics
import tempfile
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="sms")
    parser.add_argument("--mode", choices=("default", "parameter_server"), default="default")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=6)
    arguments = parser.parse_args()

    from kerastrain import callbacks, optimizers, tf_data, training
    from kerastrain.backend import tf
    from kerastrain.config import TextCNNConfig
    from kerastrain.data import load_examples, splits
    from kerastrain.distribute import cluster
    from kerastrain.recipes import textcnn

    config = TextCNNConfig(data=arguments.data)
    examples = load_examples(config.data, config.text_column, config.label_column)
    split = splits.split_as_configured(examples, config)
    class_names, train_labels, validation_labels, _ = splits.encode_labels(split)
    features = textcnn.fit_preprocessor(config, examples, split.train.inputs)
    if arguments.mode == "parameter_server":
        strategy = tf.distribute.ParameterServerStrategy(cluster.start_local_cluster(arguments.workers, 1))
    else:
        strategy = tf.distribute.get_strategy()
    train_inputs = features.transform(split.train.inputs)
    inputs = tf_data.make_training_inputs(
        strategy,
        train=(train_inputs, train_labels),
        validation=(features.transform(split.validation.inputs), validation_labels),
        batch_size=config.batch_size,
        seed=config.seed,
        length_buckets=textcnn.training_length_buckets(config, train_inputs),
    )
    with strategy.scope():
        model = textcnn.build_model(config, features, len(class_names))
        training.compile_classifier(
            model, optimizers.optimizer_from_config(config), config.steps_per_execution, False, inputs.evaluation_shards
        )

    class TimedEpochCheckpoint(callbacks.EpochCheckpoint):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            self.save_seconds = []

        def on_epoch_end(self, epoch, logs=None):
            start = time.perf_counter()
            super().on_epoch_end(epoch, logs)
            self.save_seconds.append(time.perf_counter() - start)

    directory = tempfile.mkdtemp(prefix="kerastrain-epoch-checkpoints-")
    throughput = callbacks.EpochThroughput(inputs.examples_per_epoch)
    checkpoint = TimedEpochCheckpoint(directory)
    model.fit(
        inputs.train,
        validation_data=inputs.validation,
        epochs=arguments.epochs,
        callbacks=[throughput, checkpoint],
        verbose=0,
        **inputs.fit_arguments,
    )
    last = tf.train.latest_checkpoint(directory)
    checkpoint_bytes = sum(
        os.path.getsize(os.path.join(directory, name))
        for name in os.listdir(directory)
        if name.startswith(os.path.basename(last) + ".")
    )
    epoch_seconds, save_seconds = throughput.epoch_seconds[1:], checkpoint.save_seconds[1:]
    print(
        json.dumps(
            {
                **vars(arguments),
                "parameters": model.count_params(),
                "checkpoint_bytes": checkpoint_bytes,
                "epoch_seconds": [round(seconds, 3) for seconds in throughput.epoch_seconds],
                "checkpoint_seconds": [round(seconds, 3) for seconds in checkpoint.save_seconds],
                "median_checkpoint_to_epoch": round(statistics.median(save_seconds) / statistics.median(epoch_seconds), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
