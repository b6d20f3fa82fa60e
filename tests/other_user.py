"""Running a check as a user without root's rights, and a read-only file system to check against.

Root reads and writes every file whatever its permissions, so a test of a
permission error runs its check as `nobody` when the tests run as root (in a
forked child, or a subprocess), and as the current user otherwise.
"""

import contextlib
import gc
import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import traceback

from kerastrain.errors import UsageError

NOBODY = 65534


def outcome(function):
    """`["ok", ""]`, or the type and message of what `function()` raised."""
    try:
        function()
    except UsageError as error:
        return ["UsageError", str(error)]
    except Exception as error:
        return [type(error).__name__, str(error)]
    return ["ok", ""]


def as_other_user(function):
    """Calls `function()` as a user that permissions apply to.

    Returns:
        A list `[kind, message]`: `["ok", ""]`, or the type name and message of
        the exception `function()` raised.
    """
    if os.geteuid() != 0:
        return outcome(function)
    read_end, write_end = os.pipe()
    gc.freeze()  # see run_module_as_other_user
    pid = os.fork()
    if pid == 0:  # the child: drop root's rights, run the check, report, and leave without cleanup
        gc.disable()
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            result = outcome(function)
        except BaseException as error:
            result = ["setup failed", repr(error)]
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    gc.unfreeze()
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def drop_root():
    """A `preexec_fn` for `subprocess` that runs the child as `nobody` when this process is root."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


@contextlib.contextmanager
def shared_folder():
    """A new folder that every user may enter (pytest's own tmp folders are root's alone)."""
    path = tempfile.mkdtemp(prefix="kerastrain-test-")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_on_read_only_mount(folder, code):
    """Runs Python `code` in a private mount namespace where `folder` is an empty read-only tmpfs.

    Returns:
        The `CompletedProcess`, or `None` where this machine allows no such
        namespace (then the caller skips).
    """
    if shutil.which("unshare") is None:
        return None
    script = 'mount -t tmpfs -o ro tmpfs "$1" || exit 97; exec "$2" -c "$3"'
    result = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", script, "sh", folder, sys.executable, code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    if result.returncode == 97 or "unshare:" in result.stderr:
        return None
    return result


def run_module_as_other_user(module, arguments, cwd):
    """Runs `python -m module arguments...` as a user that permissions apply to.

    As root, the command runs in a forked child that drops root's rights and
    runs the module as `python -m` does (the interpreter itself may sit in a
    folder that other users cannot enter, so it is not started again).
    Otherwise it runs in a subprocess.

    Returns:
        A `subprocess.CompletedProcess` with the exit status, stdout and stderr.
    """
    arguments = [str(argument) for argument in arguments]
    if os.geteuid() != 0:
        return subprocess.run(
            [sys.executable, "-m", module, *arguments], capture_output=True, text=True, timeout=180, cwd=cwd
        )
    output, errors = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    # The child must not finalize objects it inherits: TensorFlow's, from tests that
    # ran earlier in this process, crash when collected after a fork.
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        gc.disable()
        status = 1
        try:
            os.dup2(output.fileno(), 1)
            os.dup2(errors.fileno(), 2)
            sys.stdout = open(1, "w", closefd=False, buffering=1)
            sys.stderr = open(2, "w", closefd=False, buffering=1)
            os.chdir(cwd)
            drop_root()
            sys.argv = [module, *arguments]
            try:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
                status = 0
            except SystemExit as exit:
                status = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    gc.unfreeze()
    _, wait_status = os.waitpid(pid, 0)
    texts = []
    for file in (output, errors):
        file.seek(0)
        texts.append(file.read().decode(errors="replace"))
        file.close()
    return subprocess.CompletedProcess(module, os.waitstatus_to_exitcode(wait_status), texts[0], texts[1])
