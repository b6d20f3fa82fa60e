"""Validation under parameter servers scores every validation example exactly once."""

import json

import pytest

from conftest import SERVERS, run_script

# Starts a process with an in-process cluster of gRPC servers.
pytestmark = [pytest.mark.slow, SERVERS]

# Trains a small MLP on an in-process cluster (its own process: one cluster per
# process) with validation each epoch, then scores the same validation data with
# a copy of the final weights outside the strategy. 101 validation examples in
# batches of 8 end in a partial batch, and the 2 workers come free unevenly, so
# validation steps counted over a repeated dataset would score some batches twice
# and miss others.
SCRIPT = """
import json
import numpy as np
from kerastrain import tf_data, training
from kerastrain.distribute.inputs import make_training_inputs
from kerastrain.distribute import cluster
from kerastrain.backend import keras, tf
from kerastrain.models import build_mlp

strategy = tf.distribute.ParameterServerStrategy(cluster.start_local_cluster(2, 1))
generator = np.random.default_rng(0)
features = generator.normal(size=(301, 8)).astype(np.float32)
labels = (features[:, 0] + 0.5 * generator.normal(size=301) > 0).astype(np.int32)
train, validation = (features[:200], labels[:200]), (features[200:], labels[200:])
inputs = make_training_inputs(strategy, train, validation, batch_size=8)
with strategy.scope():
    model = build_mlp(8, 2, hidden_units=(4,))
    training.compile_classifier(model, "sgd", steps_per_execution=2, evaluation_shards=inputs.evaluation_shards)
history = model.fit(inputs.train, validation_data=inputs.validation, epochs=2, verbose=0, **inputs.fit_arguments)
local = keras.models.clone_model(model)
local.set_weights(model.get_weights())
local.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
loss, accuracy = local.evaluate(*validation, batch_size=8, verbose=0)
print(json.dumps({
    "shards": inputs.evaluation_shards,
    "fit": [history.history["val_loss"][-1], history.history["val_accuracy"][-1]],
    "local": [loss, accuracy],
}))
"""


def test_parameter_server_validation_matches_one_pass_over_the_validation_split():
    scores = json.loads(run_script(SCRIPT))
    assert scores["shards"] == 2  # one per worker
    fit_loss, fit_accuracy = scores["fit"]
    local_loss, local_accuracy = scores["local"]
    assert round(fit_accuracy * 101, 3) == round(local_accuracy * 101, 3)  # the same count of right answers
    assert abs(fit_loss - local_loss) < 1e-5
