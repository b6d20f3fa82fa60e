"""A lost parameter server ends the chief with exit status 138, which an engine retries.

Under `ParameterServerStrategy` the chief's coordinator runs the work of a
worker that fails again on another worker, and takes the worker back once it
answers again. A parameter server holds the variables, and TensorFlow does not
recover from losing one. On the chief, one of two things then happens:

- TensorFlow raises. When the parameter server's process ends, its
  connections are reset and the coordinator raises `PSUnavailableError` (a
  `tf.errors.UnavailableError`), or a read of a variable by the chief itself
  (as a checkpoint callback does) raises `tf.errors.UnavailableError`.
- Nothing happens. When the parameter server's host is cut off the network,
  no connection is reset, and the chief's calls wait as long as the link is
  down, without a word. Some of those calls (registering a new function with
  every task, as each checkpoint save under this strategy does) hold Python's
  global lock while they wait, so no other thread of the chief runs either.

Three pieces handle it. The gRPC keepalive that `cluster.use_grpc_keepalive`
sets fails a call whose connection answers no ping for `--cluster-timeout`
seconds. `watch_parameter_servers`, around `fit`, turns such errors into a
`ClusterUnavailableError` (exit status 138), and runs a thread that tries
every parameter server's address every few seconds: one that has accepted no
connection for `--cluster-timeout` seconds while no call would notice (none
is in flight to it) ends the process with status 138 at once. The rerun of
the same command resumes from the last epoch backup.
"""

import contextlib
import os
import sys
import threading
import time

from kerastrain.distribute import cluster
from kerastrain.errors import ClusterUnavailableError

# Where an error of the parameter servers' tasks is named in TensorFlow's messages.
PARAMETER_SERVER_TASK = "/job:ps/"


def is_parameter_server_loss(error):
    """Whether `error`, raised on the chief during training, means a lost task TensorFlow cannot recover.

    Any `tf.errors.UnavailableError` that reaches the chief counts: the
    coordinator recovers from a lost worker by itself and raises only what
    it cannot recover from. So do the errors that TensorFlow's coordinator
    counts as a parameter server's failure (aborted calls, and the unknown
    devices of a parameter server that restarted), and errors wrapped in the
    coordinator's input and aborted-closure errors.

    Args:
        error: the exception.

    Returns:
        A bool.
    """
    from kerastrain.backend import tf

    # The coordinator's ClosureInputError and ClosureAbortedError keep the error they wrap here.
    error = getattr(error, "original_exception", None) or error
    if isinstance(error, tf.errors.UnavailableError):
        return True
    message = str(error)
    if PARAMETER_SERVER_TASK not in message:
        return False
    if isinstance(error, tf.errors.AbortedError):
        return True
    if isinstance(error, tf.errors.InvalidArgumentError):
        return "unknown device" in message.lower() or "Unable to find the relevant tensor remote_handle" in message
    return False


def exit_retryably(message):
    """Prints `message` as an error line and ends the process at once with status 138."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(ClusterUnavailableError.EXIT_STATUS)


class ParameterServerWatch:
    """A thread that tries the parameter servers' addresses and acts on one that stays unreachable.

    Every `poll_seconds` it opens (and closes) a TCP connection to each
    address. When one has accepted none for `timeout_seconds` it calls
    `on_lost(message)`. While one is unreachable it prints a line about
    every `report_seconds`, and one when it is reachable again.

    Args:
        tasks: `(task_type, index, address)` of the parameter servers.
        timeout_seconds: how long one may stay unreachable.
        on_lost: called with a one-line message. Defaults to
            `exit_retryably`.
        poll_seconds: time between two tries. Defaults to `2.0`.
        report_seconds: time between two lines. Defaults to `10.0`.
    """

    def __init__(self, tasks, timeout_seconds, on_lost=exit_retryably, poll_seconds=2.0, report_seconds=10.0):
        self.tasks = list(tasks)
        self.timeout_seconds = timeout_seconds
        self.on_lost = on_lost
        self.poll_seconds = poll_seconds
        self.report_seconds = report_seconds
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.watch, name="kerastrain-parameter-server-watch", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=self.poll_seconds + 5)

    def watch(self):
        down_since, next_report = {}, 0.0
        while not self.stopped.wait(self.poll_seconds):
            down = cluster.unreachable(self.tasks, timeout_seconds=min(2.0, self.poll_seconds))
            now = time.monotonic()
            for task in [task for task in down_since if task not in down]:
                del down_since[task]
                print(f"kerastrain: chief: {cluster.describe_addresses([task])} is reachable again", flush=True)
            for task in down:
                down_since.setdefault(task, now)
            if not down:
                continue
            longest = max(now - down_since[task] for task in down)
            if longest >= self.timeout_seconds:
                self.on_lost(
                    f"{cluster.describe_addresses(down)} accepted no connection for {longest:.0f} s "
                    f"(--cluster-timeout {self.timeout_seconds:g}); exiting with status "
                    f"{ClusterUnavailableError.EXIT_STATUS} so that the job is retried. Rerun the same command "
                    "once the parameter servers are back: it resumes from the last epoch."
                )
                return
            if now >= next_report:
                print(
                    f"kerastrain: chief: {cluster.describe_addresses(down)} accepts no connection; waiting up to "
                    f"--cluster-timeout {self.timeout_seconds:g} s ({longest:.0f} s so far)",
                    flush=True,
                )
                next_report = now + self.report_seconds


def parameter_server_tasks(strategy):
    """The `(task_type, index, address)` of the parameter servers of `strategy`, or `None` for other strategies."""
    from kerastrain.backend import tf

    if not isinstance(strategy, tf.distribute.ParameterServerStrategy):
        return None
    # ParameterServerStrategy keeps its cluster resolver private (its public
    # `cluster_resolver` is None).
    resolver = getattr(strategy, "_cluster_resolver", None)
    addresses = resolver.cluster_spec().as_dict().get("ps", []) if resolver is not None else []
    return [("ps", index, address) for index, address in enumerate(addresses)]


@contextlib.contextmanager
def watch_parameter_servers(strategy, timeout_seconds, on_lost=exit_retryably, poll_seconds=2.0):
    """Makes the loss of a parameter server during the block end the chief with exit status 138.

    Wrap `model.fit` in it. Under a strategy other than
    `ParameterServerStrategy` it does nothing.

    Args:
        strategy: the model's `tf.distribute.Strategy`.
        timeout_seconds: how long a parameter server may accept no
            connection before the process ends (`--cluster-timeout`).
        on_lost: what to do then, called with a one-line message. Defaults
            to `exit_retryably` (the waiting call cannot be interrupted).
        poll_seconds: time between two tries of the addresses. Defaults to
            `2.0`.

    Raises:
        ClusterUnavailableError: for an error of the block that
            `is_parameter_server_loss` recognizes; the error is its cause.

    Example:

    ```python
    with watch_parameter_servers(model.distribute_strategy, config.cluster_timeout):
        model.fit(...)
    ```
    """
    tasks = parameter_server_tasks(strategy)
    if tasks is None:
        yield
        return
    watch = ParameterServerWatch(tasks, timeout_seconds, on_lost=on_lost, poll_seconds=poll_seconds).start()
    try:
        yield
    except Exception as error:
        if not is_parameter_server_loss(error):
            raise
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ClusterUnavailableError(
            f"A parameter server was lost during training ({type(error).__name__}: {first_line[:200]}). "
            "Rerun the same command once the parameter servers are back: it resumes from the last epoch."
        ) from error
    finally:
        watch.stop()
