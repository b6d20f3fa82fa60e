"""The README's commands, as a user runs them one after another in one folder."""

import json
import shlex

import pytest

from conftest import REPO, error_lines
from kerastrain import cli, pipeline, run_folder
from kerastrain.recipes import find_recipe

README = REPO / "README.md"


def code_block_after(heading):
    """The lines of the first code block after `heading` in the README."""
    text = README.read_text().split(heading, 1)[1]
    return text.split("```", 2)[1].splitlines()[1:]


def train_commands():
    lines = [line.split("  #")[0].strip() for line in code_block_after("## Command-line quickstart")]
    return [line for line in lines if line.startswith("kerastrain train ") and "--help" not in line]


def test_the_setup_commands_come_first_and_use_the_virtual_environment():
    first_block = README.read_text().split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    assert first_block == [
        'python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/kerastrain train textcnn',
        'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest',
    ]


def test_the_readme_train_commands_get_folders_of_their_own(tmp_path, monkeypatch):
    """Each command is resolved as the command line resolves it, and its folder checked as a run would."""
    monkeypatch.chdir(tmp_path)
    commands = train_commands()
    assert len(commands) >= 5
    folders = {}
    for command in commands:
        arguments = shlex.split(command)[2:]
        recipe = find_recipe(arguments[0])
        config = cli.parse_command(recipe.config_class, arguments[1:], "kerastrain train", "").config
        config = pipeline.with_output_dir(recipe, config)
        run = run_folder.RunFolder(config.output_dir)
        run.check_config(config, recipe.name)  # refused if an earlier command's run holds it
        run.path and (tmp_path / run.path).mkdir(parents=True, exist_ok=True)
        (tmp_path / run.path / "config.json").write_text(
            json.dumps({"recipe": recipe.name, "config": config.to_dict()})
        )
        folders[command] = run.path
    assert len(set(folders.values())) == len(folders), folders
    assert folders["kerastrain train textcnn"] == "runs/textcnn-sms"
    assert folders["kerastrain train mlp"] == "runs/mlp-digits"


def test_a_missing_data_file_is_named_before_the_folder_is_checked(tmp_path):
    from conftest import run_module

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"recipe": "textcnn", "config": {"epochs": 99}}))
    result = run_module("kerastrain", "train", "textcnn", "--data", tmp_path / "absent.csv", "--output-dir", folder)
    assert result.returncode == 2
    assert error_lines(result) == [
        f"error: --data {tmp_path / 'absent.csv'}: no such file. Pass the path of a CSV file (.csv or .csv.gz)."
    ]


@pytest.mark.slow
def test_two_readme_runs_in_one_folder_train_side_by_side(tmp_path):
    from conftest import run_module

    for arguments in (["mlp", "--epochs", "1"], ["mlp", "--data", "sms", "--epochs", "1", "--max-features", "500"]):
        result = run_module("kerastrain", "train", *arguments, "--verbose", "0", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    folders = sorted((tmp_path / "runs").iterdir())
    assert [folder.name.split("-")[:2] for folder in folders] == [["mlp", "digits"], ["mlp", "sms"]]
    assert all((folder / "report.html").is_file() for folder in folders)
