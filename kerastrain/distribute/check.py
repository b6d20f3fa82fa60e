"""`kerastrain cluster check`: what this task of a TF_CONFIG job will do, before it does it.

It reads TF_CONFIG as the training command would (from the environment, or
from `--tf-config FILE`), checks it for `--strategy`, and prints this task's
role, the training cluster it will connect to (the evaluator is never part
of it) and what it will do: serve, train as the chief, train, or evaluate.
A TF_CONFIG the training command would refuse gets the same one line and
exit status 2. It imports no TensorFlow, so it answers at once, in any
container that has kerastrain installed.

Usage:

    kerastrain cluster check                        # TF_CONFIG from the environment
    kerastrain cluster check --tf-config cluster/tf_config_examples/parameter_server_chief.json
    kerastrain cluster check --strategy multi_worker_mirrored
"""

import argparse
import sys

from kerastrain.distribute import cluster
from kerastrain.errors import UsageError

STRATEGIES = cluster.CLUSTER_STRATEGIES


def add_arguments(parser):
    """Adds the flags of `cluster check` to an `argparse` parser.

    Args:
        parser: an `argparse.ArgumentParser` (or a subcommand's parser).
    """
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="parameter_server",
        help="The strategy the job trains with (default: parameter_server).",
    )
    parser.add_argument(
        "--tf-config",
        metavar="FILE",
        help="Read TF_CONFIG from this JSON file instead of the TF_CONFIG environment variable.",
    )
    parser.add_argument("--debug", action="store_true", help="Show the full traceback of an error.")


def read_task(strategy, tf_config_path=None):
    """This task's checked TF_CONFIG and where it came from.

    Args:
        strategy: `"parameter_server"` or `"multi_worker_mirrored"`.
        tf_config_path: a JSON file to read instead of the environment.
            Defaults to `None`.

    Returns:
        A tuple `(task, source)`: a `cluster.TaskConfig` and a few words on
        where TF_CONFIG was read.

    Raises:
        UsageError: if there is no TF_CONFIG, the file cannot be read, or
            TF_CONFIG is malformed for `strategy`.
    """
    if tf_config_path is None:
        task = cluster.tf_config_from_environment(strategy)
        if task is None:
            raise UsageError(
                "TF_CONFIG is not set. Run this where the job's task runs (its engine sets TF_CONFIG), "
                "or pass --tf-config FILE (see cluster/tf_config_examples/)."
            )
        return task, "the TF_CONFIG environment variable"
    try:
        with open(tf_config_path) as file:
            text = file.read()
    except OSError as error:
        raise UsageError(f"--tf-config {tf_config_path}: {error.strerror}. Pass a TF_CONFIG JSON file.") from None
    except UnicodeDecodeError:
        raise UsageError(
            f"--tf-config {tf_config_path} is not UTF-8 text. Pass a TF_CONFIG JSON file saved as UTF-8."
        ) from None
    return cluster.parse_tf_config(text, strategy), tf_config_path


def describe(task, strategy, source="TF_CONFIG"):
    """The lines that `cluster check` prints for `task`.

    Args:
        task: a `cluster.TaskConfig`.
        strategy: `"parameter_server"` or `"multi_worker_mirrored"`.
        source: where TF_CONFIG was read. Defaults to `"TF_CONFIG"`.

    Returns:
        A list of lines.
    """
    lines = [f"TF_CONFIG from {source}, checked for --strategy {strategy}"]
    address = f" at {task.address}" if task.address else ""
    chief_note = " (the chief)" if task.is_chief and task.task_type != "chief" else ""
    lines.append(f"this task: {task.task_type} {task.task_index}{address}{chief_note}")
    training = task.training_cluster
    if training:
        shape = cluster.describe_tasks({name: len(addresses) for name, addresses in training.items()})
        lines.append(f"training cluster: {shape}")
        for task_type in cluster.TASK_TYPES:
            for index, task_address in enumerate(training.get(task_type, [])):
                lines.append(f"  {task_type} {index}: {task_address}")
    else:
        lines.append("training cluster: not in this TF_CONFIG (an evaluator needs none)")
    evaluators = task.cluster.get("evaluator", [])
    if evaluators:
        lines.append(f"evaluator: {evaluators[0]}, left out of the training cluster (it runs no server)")
    else:
        lines.append(
            "evaluator: not listed; one may run outside this cluster, as the chief keeps its last "
            f"{cluster.EPOCH_CHECKPOINTS_KEPT} epoch checkpoints either way"
        )
    lines.append(f"will: {plan(task, strategy)}")
    return lines


def plan(task, strategy):
    """What the training command does as `task`, in one sentence."""
    if task.task_type == "evaluator":
        return (
            "evaluate: wait for the chief's run folder (the same --output-dir, on storage both tasks share) "
            "and evaluate each epoch checkpoint the chief writes, into OUTPUT_DIR/evaluator/metrics.csv; "
            "it connects to no task and serves nothing"
        )
    port = task.address.rpartition(":")[2]
    if strategy == "parameter_server" and task.task_type in ("worker", "ps"):
        work = (
            "run the training steps the chief sends"
            if task.task_type == "worker"
            else "hold the model's variables and apply the workers' updates"
        )
        return (
            f"serve: start a gRPC server on {task.address} (port {port}, on every interface) and {work}, "
            "until it is stopped"
        )
    if strategy == "parameter_server":
        return (
            f"train as chief: wait up to --cluster-timeout for every worker and ps to accept connections, "
            f"then coordinate training from port {port} and write the run folder (--output-dir)"
        )
    if task.is_chief:
        return (
            f"train as chief: all-reduce every step with the other workers over port {port} and write the "
            "run folder (--output-dir)"
        )
    return (
        f"train: all-reduce every step with the other workers over port {port}; its run folder is temporary "
        "(the chief writes the real one)"
    )


def main(arguments):
    """Prints what this task of a TF_CONFIG job will do.

    Args:
        arguments: the `argparse.Namespace` of the flags `add_arguments` adds.

    Returns:
        `0`.

    Raises:
        UsageError: for a missing, unreadable or malformed TF_CONFIG (exit
            status 2 from the entry point).

    Example:

    ```python
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    main(parser.parse_args(["--tf-config", "cluster/tf_config_examples/parameter_server_ps0.json"]))
    ```
    """
    task, source = read_task(arguments.strategy, arguments.tf_config)
    print("\n".join(describe(task, arguments.strategy, source)))
    return 0


def run(argv=None):
    """`python -m kerastrain.distribute.check`: `main` with one-line errors and exit status 2."""
    from kerastrain import cli

    parser = cli.OneLineErrorParser(
        prog="kerastrain cluster check",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    cli.run_entry_point(lambda argv: main(parser.parse_args(argv)), sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    run()
