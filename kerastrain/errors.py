"""The error type for bad input from a user."""


class UsageError(Exception):
    """Bad input that the user can fix: a file, a column, a flag or a config value.

    The message is one line that names the input and the fix. Entry points print
    it without a traceback and exit with status 2 (see `kerastrain.cli`).

    Example:

    ```python
    raise UsageError(
        "Expected --epochs to be a positive integer. Received: epochs=-1"
    )
    ```
    """
