"""Strategy helpers that need no cluster: names, warnings filtered by name."""

import logging

from kerastrain.distribute import strategies


def record(message):
    return logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, message, None, None)


def test_only_the_checkpoint_savers_own_retracing_warning_is_dropped():
    saver = (
        "5 out of the last 5 calls to <function MultiDeviceSaver.save.<locals>.tf_function_save at 0x7f74c8591120> "
        "triggered tf.function retracing."
    )
    other = "5 out of the last 5 calls to <function train_function at 0x7f74c8591120> triggered tf.function retracing."
    assert strategies.drop_checkpoint_retracing_warning(record(saver)) is False
    assert strategies.drop_checkpoint_retracing_warning(record(other)) is True


def test_one_process_strategies_have_one_worker_and_no_cluster():
    from kerastrain.backend import tf

    strategy = tf.distribute.get_strategy()
    assert strategies.worker_count(strategy) == 1
    assert strategies.describe_cluster(strategy) == {}
    assert strategies.has_progress_bar(strategy)
