"""Distributed training: strategies, TF_CONFIG clusters, per-worker step counts and the evaluator task.

Everything that knows about a particular `tf.distribute` strategy lives here;
the rest of the package asks these modules rather than the strategy objects.
"""
