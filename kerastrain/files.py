"""Checks that an output folder or file can be written, made before any work starts.

A run that trains for an hour and then cannot save its model has lost that
hour. These checks write nothing: they look at the path, its nearest existing
folder, the permissions and the file system, and raise one line naming the
path and the fix.
"""

import errno
import os

from kerastrain.errors import UsageError

# Kernel file systems: writing there changes the system, or fails, but never saves a file.
VIRTUAL_FOLDERS = ("/proc", "/sys")


def check_writable_folder(path, flag):
    """Checks that `path` is, or can be created as, a folder this process can write in.

    The folder itself, or else the nearest folder above it that exists, must be
    a folder (not a file), writable by this process, on a file system that is
    not read-only and not a kernel one (`/proc`, `/sys`).

    Args:
        path: the folder.
        flag: the flag that named it, for the message, like `"--output-dir"`.

    Raises:
        UsageError: if the folder cannot be created or written.

    Example:

    ```python
    check_writable_folder("runs/textcnn", "--output-dir")
    ```
    """
    path = check_path_text(path, flag)
    check_not_virtual(path, flag)
    existing, missing = nearest_existing(path, flag)
    if not os.path.isdir(existing):
        if existing == os.path.abspath(path):
            raise UsageError(f"{flag} {path} is a file, not a folder. Pass a folder path.")
        raise UsageError(
            f"{flag} {path} cannot be created: {existing} is a file, not a folder. Pass a path outside it."
        )
    check_names_fit(existing, missing, path, flag)
    check_can_write_in(existing, path, flag, creating=bool(missing))


def check_writable_file(path, flag, protected=(), example_name="out"):
    """Checks that the file `path` can be written (created, or overwritten) by this process.

    Its folder must exist and be writable (see `check_writable_folder`); an
    existing file must be one this process may write, and must not be one of
    `protected` or inside one of them.

    Args:
        path: the file.
        flag: the flag that named it, for the message, like `"--output"`.
        protected: files and folders (such as the input data and the run
            folders) whose existing files this output must not overwrite.
            Defaults to `()`.
        example_name: a file name to suggest when `path` is a folder.
            Defaults to `"out"`.

    Raises:
        UsageError: if the file cannot be written.

    Example:

    ```python
    check_writable_file("predictions.csv", "--output")
    ```
    """
    path = check_path_text(path, flag)
    check_not_virtual(path, flag)
    check_not_overwriting(path, flag, protected)
    if path.endswith(os.sep) or os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a folder. Pass the path of a file, like {os.path.join(path, example_name)}.")
    folder = os.path.dirname(os.path.abspath(path))
    existing, missing = nearest_existing(folder, flag)
    if missing:
        if not os.path.isdir(existing):
            raise UsageError(
                f"{flag} {path} cannot be written: {existing} is a file, not a folder. Pass a path outside it."
            )
        raise UsageError(
            f"{flag} {path}: folder {os.path.dirname(path) or folder} does not exist. Create it or pass another path."
        )
    if not os.path.isdir(folder):
        raise UsageError(f"{flag} {path} cannot be written: {folder} is a file, not a folder. Pass a path outside it.")
    check_names_fit(folder, [os.path.basename(path)], path, flag)
    if os.path.lexists(path):
        try:
            status = os.stat(path)
        except OSError:
            status = None
        # A device or a pipe (/dev/stdout, /dev/null) is written like a file.
        if status is not None and not os.access(path, os.W_OK):
            read_only = is_read_only_file_system(folder)
            why = "its file system is read-only" if read_only else "permission denied"
            raise UsageError(f"{flag} {path} cannot be overwritten ({why}). Pass another path.")
        if status is not None:
            return
    check_can_write_in(folder, path, flag, creating=True)


def check_not_overwriting(path, flag, protected):
    if not os.path.isfile(path):
        return
    target = os.path.realpath(path)
    for kept in protected:
        if not kept:
            continue
        kept_path = os.path.realpath(kept)
        if target == kept_path:
            raise UsageError(f"{flag} {path} is an input of this command ({kept}). Pass another path.")
        if target.startswith(kept_path.rstrip(os.sep) + os.sep):
            name = os.path.relpath(target, kept_path)
            raise UsageError(f"{flag} {path} would overwrite {name} in {kept}. Pass another path.")


def check_path_text(path, flag):
    path = os.fspath(path) if path is not None else ""
    if not str(path).strip():
        raise UsageError(f"{flag} is empty. Pass a path.")
    if "\x00" in path:
        raise UsageError(f"{flag} {path!r} holds a NUL character. Pass a path without it.")
    return path


def check_not_virtual(path, flag):
    resolved = os.path.realpath(path)
    for folder in VIRTUAL_FOLDERS:
        if resolved == folder or resolved.startswith(folder + os.sep):
            raise UsageError(
                f"{flag} {path} is in {folder}, a kernel file system where files cannot be saved. "
                "Pass a path on a disk."
            )


def nearest_existing(path, flag):
    """The nearest existing path at or above `path`, and the names below it that do not exist yet."""
    current = os.path.abspath(path)
    missing = []
    while True:
        try:
            os.stat(current)
            return current, list(reversed(missing))
        except FileNotFoundError:
            pass
        except NotADirectoryError:
            pass  # a file above: found when the walk reaches it
        except PermissionError:
            raise UsageError(
                f"{flag} {path} cannot be reached: permission denied on a folder above it. Pass another path."
            ) from None
        except OSError as error:
            if error.errno != errno.ENAMETOOLONG:  # a name too long: found by `check_names_fit`
                raise UsageError(f"{flag} {path} cannot be used ({error.strerror}). Pass another path.") from None
        parent = os.path.dirname(current)
        if parent == current:
            return current, list(reversed(missing))
        missing.append(os.path.basename(current))
        current = parent


def check_names_fit(existing, names, path, flag):
    try:
        longest = os.pathconf(existing, "PC_NAME_MAX")
        longest_path = os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        longest, longest_path = 255, 4096
    if len(os.fsencode(os.path.abspath(path))) >= longest_path:
        raise UsageError(
            f"{flag}: the path is longer than the {longest_path} bytes a path may have. Pass a shorter path."
        )
    for name in names:
        if len(os.fsencode(name)) > longest:
            raise UsageError(
                f"{flag} {path}: the name {name[:40]}... is longer than the {longest} bytes a file name "
                "may have here. Pass a shorter name."
            )


def check_can_write_in(folder, path, flag, creating):
    if is_read_only_file_system(folder):
        raise UsageError(f"{flag} {path} cannot be written: {folder} is on a read-only file system. Pass another path.")
    if not os.access(folder, os.W_OK | os.X_OK):
        action = "created" if creating else "written"
        place = folder if folder != os.path.abspath(path) else "the folder"
        raise UsageError(
            f"{flag} {path} cannot be {action}: permission denied in {place}. "
            "Pass a folder you can write to."
        )


def is_read_only_file_system(folder):
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False
