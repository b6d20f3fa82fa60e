"""The `kerastrain` command: its subcommands, presets by name, and an installed package."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO, environment_without_tf_config, error_lines

KERASTRAIN = [sys.executable, "-m", "kerastrain"]


def kerastrain(*arguments, cwd=REPO, timeout=300, environment=None):
    return subprocess.run(
        [*KERASTRAIN, *map(str, arguments)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=environment or environment_without_tf_config(PYTHONUNBUFFERED="1"),
    )


def test_help_lists_the_subcommands():
    result = kerastrain("--help")
    assert result.returncode == 0
    for command in ("train", "predict", "compress", "report", "compare", "presets", "cluster"):
        assert f"    {command} " in result.stdout


def test_train_help_lists_the_recipes_and_recipe_help_groups_flags_by_concern():
    result = kerastrain("train", "--help")
    assert result.returncode == 0 and "textcnn" in result.stdout and "mlp" in result.stdout
    result = kerastrain("train", "textcnn", "--help")
    assert result.returncode == 0
    headings = [line.rstrip(":") for line in result.stdout.splitlines() if line and not line.startswith(" ")]
    groups = ["presets and search", "data", "model", "training", "precision and speed", "distribution", "output"]
    assert [heading for heading in headings if heading in groups] == groups
    model_section = result.stdout.split("\nmodel:\n")[1].split("\ntraining:\n")[0]
    assert "--kernel-sizes" in model_section and "--learning-rate" not in model_section


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["train"], "kerastrain train needs a recipe"),
        (["train", "cnn"], "Expected a recipe, one of: mlp, textcnn. Received: 'cnn'"),
        (["train", "textcnn", "--config", "no_such_preset"], "no such file or bundled preset"),
        (["train", "textcnn", "--config", "digits_mlp"], "is a preset for the mlp recipe, not textcnn"),
        (["train", "textcnn", "--output-dir", ""], "--output-dir is empty"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_commands_get_one_line_and_exit_2(tmp_path, arguments, message):
    result = kerastrain(*arguments, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and message in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_presets_are_listed_and_found_by_name_from_any_folder(tmp_path):
    result = kerastrain("presets", cwd=tmp_path)
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip() and not line.startswith("Use")]
    assert {"sms_textcnn", "smoke_textcnn", "digits_mlp", "ps_textcnn"} <= set(names)
    sms = next(line for line in result.stdout.splitlines() if line.startswith("sms_textcnn "))
    assert " textcnn " in sms and "SMS" in sms
    bundled = [path.stem for path in (REPO / "recipes").glob("*.toml")]
    assert sorted(names) == sorted(bundled)


def test_a_reader_that_closes_the_pipe_ends_the_listing_quietly_with_141(tmp_path):
    """`kerastrain presets | head -1`, with the reader gone before the listing is written."""
    reader, writer = os.pipe()
    os.close(reader)
    with os.fdopen(writer, "w") as closed_pipe:
        result = subprocess.run(
            [*KERASTRAIN, "presets"], stdout=closed_pipe, stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=300
        )
    assert result.returncode == 141
    assert result.stderr == ""


@pytest.mark.slow
def test_the_wheel_carries_the_presets_and_the_bundled_data(tmp_path):
    """The package as `pip install .` installs it, imported from outside the source tree."""
    # A copy of the tracked files, as a clean clone has them (no build/ left from earlier builds).
    source = tmp_path / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], capture_output=True, text=True, cwd=REPO, check=True)
    for name in filter(None, tracked.stdout.split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path, source],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("kerastrain-*.whl")
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    script = (
        "import json, kerastrain, kerastrain.config as config, kerastrain.data.bundled as bundled;"
        "print(json.dumps([kerastrain.__file__, str(config.preset_folder()), config.preset_names(),"
        " len(bundled.load_sms_spam())]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, "PYTHONPATH": str(installed)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    package, folder, names, sms = json.loads(result.stdout)
    assert package.startswith(str(installed)) and folder.startswith(str(installed))
    assert "sms_textcnn" in names and "trec_textcnn" not in names
    assert sms == 5574


@pytest.mark.slow
def test_a_preset_trains_from_an_empty_folder_by_both_entry_points(tmp_path):
    command = kerastrain("train", "textcnn", "--config", "smoke_textcnn", "--epochs", "1", cwd=tmp_path)
    assert command.returncode == 0, command.stderr
    first_line = command.stdout.splitlines()[0]
    assert first_line.startswith("kerastrain: textcnn on sms: 420 train") and "runs/textcnn-sms-" in first_line
    (folder,) = (tmp_path / "runs").iterdir()
    assert (folder / "report.html").is_file()
    alias = subprocess.run(
        [sys.executable, "-m", "kerastrain.recipes.textcnn", "--config", "smoke_textcnn", "--epochs", "1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, env=environment_without_tf_config(),
    )  # fmt: skip
    assert alias.returncode == 0 and "already holds this finished run" in alias.stdout  # the same run
    shutil.rmtree(folder)
    alias = subprocess.run(
        [sys.executable, "-m", "kerastrain.recipes.textcnn", "--config", "smoke_textcnn", "--epochs", "1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, env=environment_without_tf_config(),
    )  # fmt: skip
    assert alias.returncode == 0, alias.stderr
    assert (folder / "report.html").is_file()


def test_cluster_check_describes_a_task_or_names_the_problem(tmp_path):
    example = REPO / "cluster" / "tf_config_examples" / "parameter_server_chief.json"
    result = kerastrain("cluster", "check", "--tf-config", example, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "this task: chief 0" in result.stdout and "will: train as chief" in result.stdout
    broken = tmp_path / "tf_config.json"
    broken.write_text('{"cluster": {"master": ["host:2222"]}, "task": {"type": "master", "index": 0}}')
    result = kerastrain("cluster", "check", "--tf-config", broken, cwd=tmp_path)
    assert result.returncode == 2
    assert len(error_lines(result)) == 1 and "master" in error_lines(result)[0]
