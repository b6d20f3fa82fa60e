"""The training inputs of a strategy, and each parameter-server worker's dataset function."""

import time

import numpy as np

from kerastrain.backend import tf
from kerastrain.distribute.inputs import make_training_inputs, worker_dataset_function


def test_parameter_server_workers_shuffle_in_orders_of_their_own():
    # The coordinator traces the dataset function once and every worker runs
    # that graph; with a seed fixed in it, the workers would read the same
    # batches at the same time. A global seed is set, as --seed does.
    tf.random.set_seed(0)
    make_worker_dataset = worker_dataset_function((np.zeros((64, 1), "float32"), np.arange(64)), 8, seed=0)

    @tf.function
    def first_batches():
        dataset = make_worker_dataset(tf.distribute.InputContext())
        labels = dataset.take(16).map(lambda inputs, labels: labels).unbatch().batch(128)
        return tf.reshape(labels.get_single_element(), (2, 64))

    first_worker = first_batches().numpy()
    time.sleep(0.01)
    second_worker = first_batches().numpy()
    for one_pass in [*first_worker, *second_worker]:
        assert sorted(one_pass) == list(range(64))  # each example once per pass
    assert list(first_worker[0]) != list(first_worker[1])  # a new order every pass
    assert list(first_worker[0]) != list(second_worker[0])


def batch_sizes(dataset, steps):
    return [int(labels.shape[0]) for _, labels in dataset.take(steps)]


def test_training_inputs_repeat_whole_batches_and_count_an_epoch_in_steps():
    inputs = make_training_inputs(
        tf.distribute.get_strategy(), (np.zeros((10, 1), "float32"), np.arange(10)), (np.zeros((3, 1), "float32"), np.arange(3)), 4
    )
    assert inputs.steps_per_epoch == 3 and inputs.fit_arguments == {"steps_per_epoch": 3}
    assert inputs.examples_per_epoch == 12
    # Every batch is whole (one shape for XLA), and the examples keep coming.
    assert batch_sizes(inputs.train, 6) == [4] * 6
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in inputs.train.take(5)])
    assert sorted(labels[:10]) == list(range(10)) and sorted(labels[10:20]) == list(range(10))
    assert [int(labels.shape[0]) for _, labels in inputs.validation] == [3]


def test_training_inputs_of_a_split_smaller_than_one_batch_still_fill_it():
    inputs = make_training_inputs(
        tf.distribute.get_strategy(), (np.zeros((3, 1), "float32"), np.arange(3)), (np.zeros((3, 1), "float32"), np.arange(3)), 4
    )
    assert inputs.steps_per_epoch == 1 and inputs.examples_per_epoch == 4
    assert batch_sizes(inputs.train, 2) == [4, 4]
