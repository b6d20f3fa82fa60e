"""Runs one benchmark contender in a fresh Python process and reads back its result.

Keras 3 and tf-keras cannot share a process, so each benchmark script runs
every contender as a child of itself; the child prints one line
`RESULT {json}` on standard output.
"""

import json
import os
import subprocess

RESULT_PREFIX = "RESULT "


def run(command, description):
    """Runs `command` with Keras 3 as the default Keras and returns the dict of its last `RESULT` line.

    Args:
        command: the child's command line, a list of strings.
        description: what the child runs, for the error when it fails.

    Returns:
        The result dict the child printed.

    Raises:
        SystemExit: if the child fails or prints no result.
    """
    environment = dict(os.environ)
    environment.pop("TF_USE_LEGACY_KERAS", None)
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"{description} failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix(RESULT_PREFIX))
