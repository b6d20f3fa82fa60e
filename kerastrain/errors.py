"""The error types that entry points turn into one line and an exit status."""


class UsageError(Exception):
    """Bad input that the user can fix: a file, a column, a flag or a config value.

    The message is one line that names the input and the fix. Entry points print
    it without a traceback and exit with status 2 (see `kerastrain.cli`): an
    engine that restarts failed tasks must not retry it, as a rerun fails the
    same way.

    Example:

    ```python
    raise UsageError(
        "Expected --epochs to be a positive integer. Received: epochs=-1"
    )
    ```
    """


class ClusterUnavailableError(Exception):
    """A cluster task that could not be reached: a transient failure that a rerun may not meet.

    Raised when the workers and parameter servers of a TF_CONFIG job do not
    accept connections within `--cluster-timeout`, or when a parameter server
    is lost during training in a way TensorFlow cannot recover from. Entry
    points print the one-line message and exit with status 138
    (`EXIT_STATUS`), the code the Kubeflow training operator documents for
    user errors to retry: under `restartPolicy: ExitCode` it restarts the
    task, which resumes from the run's last epoch backup.

    Example:

    ```python
    raise ClusterUnavailableError(
        "TF_CONFIG's ps 0 (trainer-ps-0:2222) accepted no connection within --cluster-timeout 600 s."
    )
    ```
    """

    EXIT_STATUS = 138
