"""Each worker's share of the training: steps counted on parameter-server workers, and the file of them."""

import json

import pytest

from conftest import SERVERS, run_script
from kerastrain import run_folder

pytestmark = SERVERS  # its in-process clusters listen on ports

# Trains on an in-process cluster (its own process: one cluster per process)
# while the coordinator's thread of one worker, a different one each epoch,
# waits before each function it dispatches, so that worker runs fewer steps.
# The functions each worker was sent are tallied on the coordinator, apart
# from what the workers count. The tally reads TensorFlow's private
# `Closure.execute_on`: no public API says which worker ran what.
ATTRIBUTION_SCRIPT = """
import json, time
import numpy as np
from kerastrain import callbacks, run_folder, tf_data, training
from kerastrain.distribute.inputs import make_training_inputs
from kerastrain.distribute import cluster, worker_steps
from tensorflow.python.distribute.coordinator import cluster_coordinator
from kerastrain.backend import keras, tf
from kerastrain.models import build_mlp

STEPS_PER_EXECUTION, SLOW_WORKER = 2, [1, 0]
strategy = tf.distribute.ParameterServerStrategy(cluster.start_local_cluster(2, 1))
features = np.random.default_rng(0).random((190, 8), dtype=np.float32)
data = (features, (features[:, 0] > 0.5).astype(np.int32))
inputs = make_training_inputs(strategy, data, data, batch_size=8)  # 24 steps of 8
with strategy.scope():
    model = build_mlp(8, 2, hidden_units=(4,))
    training.compile_classifier(model, "sgd", steps_per_execution=STEPS_PER_EXECUTION)

epoch, dispatched = [0], [[0, 0] for _ in SLOW_WORKER]
execute_on = cluster_coordinator.Closure.execute_on

def tallied_execute_on(closure, worker):
    if not isinstance(closure, cluster_coordinator.ResourceClosure):  # a training function
        if worker.worker_index == SLOW_WORKER[epoch[0]]:
            time.sleep(0.1)
        dispatched[epoch[0]][worker.worker_index] += STEPS_PER_EXECUTION
    return execute_on(closure, worker)

cluster_coordinator.Closure.execute_on = tallied_execute_on

class Epoch(keras.callbacks.Callback):
    def on_epoch_begin(self, index, logs=None):
        epoch[0] = index

run = run_folder.RunFolder("RUN_DIR")
model.fit(
    inputs.train, epochs=len(SLOW_WORKER), verbose=0, steps_per_epoch=inputs.steps_per_epoch,
    callbacks=[Epoch(), callbacks.EpochThroughput(inputs.examples_per_epoch),
               worker_steps.throughput_callback(
                   model, run.file(run_folder.WORKERS), inputs.examples_per_epoch, inputs.steps_per_epoch)],
)
print(json.dumps({"dispatched": dispatched, "steps_per_epoch": inputs.steps_per_epoch}))
"""


@pytest.mark.slow
def test_parameter_server_workers_count_the_steps_they_ran(tmp_path):
    script = ATTRIBUTION_SCRIPT.replace("RUN_DIR", str(tmp_path))
    expected = json.loads(run_script(script))
    workers = run_folder.RunFolder(tmp_path).read_workers()
    counted = workers.pivot(index="epoch", columns="worker", values="steps").astype(int).values.tolist()
    print(f"steps per worker and epoch, counted {counted}, dispatched {expected['dispatched']}")  # shown with -s
    # Each worker counted exactly the steps the coordinator sent it, and the slow one ran fewer.
    assert counted == expected["dispatched"]
    assert counted[0][1] < counted[0][0] and counted[1][0] < counted[1][1]
    assert all(sum(epoch) == expected["steps_per_epoch"] == 24 for epoch in counted)
    assert set(workers["source"]) == {"counted"}
    assert (workers["examples"] == workers["steps"] * 8).all()
    for _, rows in workers.groupby("epoch"):
        assert rows["examples"].sum() == 24 * 8
        rate = rows["examples_per_second"] / rows["examples"]  # 1 / the epoch's seconds, for every worker
        assert rate.max() == pytest.approx(rate.min())


class FakeCounter:
    """Stands in for a `WorkerStepCounter`: each `read()` gives the next list of counts."""

    def __init__(self, *reads):
        self.reads = list(reads)

    def read(self):
        return self.reads.pop(0)


def write_epochs(throughput, seconds):
    throughput.on_train_begin()
    for epoch, epoch_seconds in enumerate(seconds):
        throughput.on_epoch_end(epoch, {"epoch_seconds": epoch_seconds})


def test_counted_steps_are_differences_of_counts_and_an_unread_worker_is_left_blank(tmp_path):
    from kerastrain.callbacks import WorkerThroughput

    path = tmp_path / "workers.csv"
    # Counts before training, then after epochs 0-3; worker 1 is down at the end of
    # epoch 1 and back, counting from zero again, by the end of epoch 2.
    counter = FakeCounter([0, 0], [6, 4], [11, None], [15, 3], [20, 7])
    write_epochs(WorkerThroughput(path, 2, examples_per_step=16, steps_per_epoch=10, counter=counter), [1, 2, 1, 1])
    workers = run_folder.RunFolder(tmp_path).read_workers()
    assert list(workers.columns) == ["epoch", "worker", "steps", "examples", "examples_per_second", "source"]
    steps = workers.pivot(index="epoch", columns="worker", values="steps")
    assert steps[0].tolist() == [6, 5, 4, 5]
    # Unknown rather than wrong: not read after epoch 1, and after epoch 2 it could have restarted.
    assert steps[1].iloc[0] == 4 and steps[1].iloc[1:3].isna().all() and steps[1].iloc[3] == 4
    first = workers[workers["epoch"] == 1]  # epochs count from 1
    assert first["examples"].tolist() == [96, 64] and first["examples_per_second"].tolist() == [96, 64]


def test_mirrored_workers_share_every_step_equally_and_say_it_is_derived(tmp_path):
    from kerastrain.callbacks import WorkerThroughput

    write_epochs(WorkerThroughput(tmp_path / "workers.csv", 2, examples_per_step=32, steps_per_epoch=5), [2.0, 4.0])
    workers = run_folder.RunFolder(tmp_path).read_workers()
    assert set(workers["source"]) == {"derived"}
    assert workers["steps"].tolist() == [5, 5, 5, 5]
    assert workers["examples"].tolist() == [80, 80, 80, 80]  # 5 steps on half of each batch of 32
    assert workers["examples_per_second"].tolist() == [40, 40, 20, 20]


def test_a_resumed_run_keeps_one_row_per_epoch_and_worker(tmp_path):
    run = run_folder.RunFolder(tmp_path)
    (tmp_path / run_folder.WORKERS).write_text(
        "epoch,worker,steps,examples,examples_per_second,source\n"
        "1,0,3,3,1.0,counted\n1,1,2,2,1.0,counted\n2,0,1,1,1.0,counted\n2,0,4,4,2.0,counted\n"
    )
    workers = run.read_workers()
    assert list(zip(workers["epoch"], workers["worker"], workers["steps"])) == [(1, 0, 3), (1, 1, 2), (2, 0, 4)]
    assert run_folder.RunFolder(tmp_path / "none").read_workers().empty


def test_a_step_counter_needs_parameter_servers():
    from kerastrain.backend import tf
    from kerastrain.distribute.worker_steps import WorkerStepCounter

    expected = "Expected a ParameterServerStrategy. Received: strategy=_DefaultDistributionStrategy"
    with pytest.raises(ValueError, match=expected):
        WorkerStepCounter(tf.distribute.get_strategy())
