"""Output folders and files that cannot be written are refused before any work, writing nothing."""

import os
import sys

import pytest

from kerastrain import files
from kerastrain.errors import UsageError
from other_user import as_other_user, run_on_read_only_mount, shared_folder


def refused(check, path, *arguments, **keywords):
    with pytest.raises(UsageError) as excinfo:
        check(path, "--output", *arguments, **keywords)
    message = str(excinfo.value)
    assert "\n" not in message, message
    assert message.startswith("--output")
    return message


def snapshot(folder):
    return sorted((root, tuple(sorted(names))) for root, _, names in os.walk(folder))


# Folders.


def test_new_and_existing_folders_pass_and_nothing_is_created(tmp_path):
    before = snapshot(tmp_path)
    files.check_writable_folder(tmp_path / "runs" / "a" / "b", "--output-dir")
    files.check_writable_folder(tmp_path, "--output-dir")
    assert snapshot(tmp_path) == before


def test_a_folder_under_a_regular_file_is_refused(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    message = refused(files.check_writable_folder, blocker / "run")
    assert f"{blocker} is a file, not a folder" in message
    assert blocker.read_text() == "mine"


def test_a_file_passed_as_a_folder_is_refused(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("x")
    assert "is a file, not a folder" in refused(files.check_writable_folder, path)


@pytest.mark.parametrize("path", ["/proc/kerastrain-run", "/sys/kernel/kerastrain", "/proc"])
def test_kernel_file_systems_are_refused(path):
    assert "kernel file system" in refused(files.check_writable_folder, path)
    assert "kernel file system" in refused(files.check_writable_file, path + "/out.csv")


@pytest.mark.parametrize("path", ["", "   "])
def test_an_empty_path_is_refused(path):
    assert "--output is empty" in refused(files.check_writable_folder, path)
    assert "--output is empty" in refused(files.check_writable_file, path)


def test_a_name_longer_than_the_file_system_takes_is_refused(tmp_path):
    assert "longer than" in refused(files.check_writable_folder, tmp_path / ("x" * 300) / "run")
    assert "longer than" in refused(files.check_writable_file, tmp_path / ("y" * 300 + ".csv"))


def test_a_folder_without_write_permission_is_refused_for_a_user_without_root_rights():
    with shared_folder() as folder:
        locked = os.path.join(folder, "locked")
        os.mkdir(locked, 0o555)
        open_folder = os.path.join(folder, "open")
        os.mkdir(open_folder)
        os.chmod(open_folder, 0o777)
        assert as_other_user(lambda: files.check_writable_folder(os.path.join(open_folder, "run"), "--output-dir")) == [
            "ok", ""
        ]
        kind, message = as_other_user(lambda: files.check_writable_folder(os.path.join(locked, "run"), "--output-dir"))
        file_kind, file_message = as_other_user(lambda: files.check_writable_file(os.path.join(locked, "p.csv"), "--output"))
        assert os.listdir(locked) == []
    assert kind == "UsageError" and f"permission denied in {locked}" in message
    assert file_kind == "UsageError" and "permission denied" in file_message


def test_a_read_only_file_system_is_refused(tmp_path):
    code = (
        "import sys\n"
        "from kerastrain import files\n"
        "from kerastrain.errors import UsageError\n"
        "for check, path in ((files.check_writable_folder, sys.argv[1] + '/run'),\n"
        "                    (files.check_writable_folder, sys.argv[1]),\n"
        "                    (files.check_writable_file, sys.argv[1] + '/out.csv')):\n"
        "    try:\n"
        "        check(path, '--output')\n"
        "        print('accepted', path)\n"
        "    except UsageError as error:\n"
        "        print(error)\n"
    )
    folder = tmp_path / "mounted"
    folder.mkdir()
    result = run_on_read_only_mount(str(folder), code.replace("sys.argv[1]", repr(str(folder))))
    if result is None:
        pytest.skip("this machine allows no private read-only mount")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    assert all("read-only file system" in line for line in lines), lines


# Files.


def test_new_and_existing_files_pass(tmp_path):
    existing = tmp_path / "predictions.csv"
    existing.write_text("old")
    files.check_writable_file(existing, "--output")
    files.check_writable_file(tmp_path / "new.csv", "--output")
    assert existing.read_text() == "old" and not (tmp_path / "new.csv").exists()


def test_a_file_in_a_missing_folder_is_refused(tmp_path):
    message = refused(files.check_writable_file, tmp_path / "absent" / "out.csv")
    assert f"folder {tmp_path / 'absent'} does not exist" in message
    assert not (tmp_path / "absent").exists()


def test_a_file_under_a_regular_file_is_refused(tmp_path):
    blocker = tmp_path / "data.csv"
    blocker.write_text("x")
    assert f"{blocker} is a file, not a folder" in refused(files.check_writable_file, blocker / "out.png")


def test_a_folder_passed_as_a_file_is_refused(tmp_path):
    assert "is a folder" in refused(files.check_writable_file, tmp_path)


def test_a_device_that_can_be_written_passes():
    files.check_writable_file("/dev/null", "--output")


def test_a_file_without_write_permission_is_refused_for_a_user_without_root_rights():
    with shared_folder() as folder:
        path = os.path.join(folder, "predictions.csv")
        with open(path, "w") as file:
            file.write("kept")
        os.chmod(path, 0o444)
        os.chmod(folder, 0o777)
        kind, message = as_other_user(lambda: files.check_writable_file(path, "--output"))
        with open(path) as file:
            assert file.read() == "kept"
    assert kind == "UsageError" and "cannot be overwritten (permission denied)" in message


def test_protected_inputs_and_run_files_are_not_overwritten(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("x")
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_text("weights")
    assert "is an input of this command" in refused(files.check_writable_file, data, protected=[data])
    message = refused(files.check_writable_file, run / "model.keras", protected=[str(run), None])
    assert f"would overwrite model.keras in {run}" in message
    files.check_writable_file(run / "predictions.csv", "--output", protected=[run])  # a new file in the run: fine


def test_checks_import_no_tensorflow():
    import subprocess

    probe = subprocess.run(
        [sys.executable, "-c", "import sys, kerastrain.files; print('tensorflow' in sys.modules, 'pandas' in sys.modules)"],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "False False", probe.stderr
