"""Bad input through the real commands: exit status 2, one line naming the input, nothing changed.

Every case runs a command as a user would, in a folder of data files, a
finished-looking text run and numeric run, and a regular file. It must exit
with status 2, write exactly one line of its own on stderr (no traceback) that
names the input, leave every file of that folder byte for byte as it was and add
none, and refuse before TensorFlow is imported (seen with `python -X
importtime`, which lists every module a command imports).
"""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import joblib
import pandas as pd
import pytest
from sklearn import preprocessing

from conftest import REPO, environment_without_tf_config, error_lines
from other_user import run_module_as_other_user, shared_folder

TEXTCNN = "kerastrain.recipes.textcnn"
MLP = "kerastrain.recipes.mlp"
PREDICT = "kerastrain.predict"
COMMANDS = "kerastrain"

LABELS = ["spam", "ham", "ham"] * 10
TEXTS = [f"message, number {index}" for index in range(len(LABELS))]


def write_text_table(path, separator=","):
    quoted = [f'"{text}"' if separator == "," else text for text in TEXTS]
    path.write_text(f"text{separator}label\n" + "".join(f"{text}{separator}{label}\n" for text, label in zip(quoted, LABELS)))
    return path


def write_numbers(path, rows=None, header="label,pixel1,pixel2,pixel3", separator=","):
    rows = rows or [[index % 3, index, index * 2, index * 3] for index in range(30)]
    path.write_text(header + "\n" + "".join(separator.join(map(str, row)) + "\n" for row in rows))
    return path


def write_finished_run(folder, preprocessor, class_names):
    """A run folder with what `predict` and `compare` look for; its model is never loaded by a refused command."""
    folder.mkdir()
    joblib.dump(preprocessor, folder / "preprocessor.joblib")
    (folder / "classes.json").write_text(json.dumps(class_names))
    (folder / "model.keras").write_bytes(b"weights that a refused command never loads")
    (folder / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.5}, "epochs": 1}))
    (folder / "config.json").write_text(json.dumps({"config": {}, "environment": {}}))
    (folder / "history.csv").write_text("epoch,loss,val_loss\n0,1.0,1.0\n")
    (folder / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\n a run's own picture")
    return folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Data files, two finished-looking runs and a regular file, shared by the cases (which must change none)."""
    from kerastrain.text_vectorization import TextFeatures, TextVectorizer

    folder = tmp_path_factory.mktemp("workspace")
    write_text_table(folder / "texts.csv")
    write_text_table(folder / "texts.tsv", "\t")
    write_numbers(folder / "numbers.csv")
    (folder / "twice.csv").write_text("text,label,label\n" + "hello,ham,spam\n" * 6)
    (folder / "unquoted.csv").write_text("text,label\n" + "".join(f"hello, world {index},ham\n" for index in range(6)))
    with zipfile.ZipFile(folder / "two.zip", "w") as archive:
        archive.writestr("train.csv", "text,label\na,b\n")
        archive.writestr("test.csv", "text,label\na,b\n")
    with zipfile.ZipFile(folder / "book.xlsx", "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    (folder / "picture.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (folder / "broken.csv").symlink_to(folder / "gone.csv")
    (folder / "a_folder").mkdir()
    write_text_table(folder / "a_folder" / "train.csv")
    write_numbers(folder / "infinite.csv", [["a", "inf", 1, 2], ["b", "-inf", 1, 2], ["a", 1e39, 1, 2]] * 3)
    write_numbers(folder / "stray.csv", [[index % 3, "?" if index == 4 else index, 1, 2] for index in range(30)])
    write_numbers(folder / "european.csv", [[index % 3, f"{index},5", 1, 2] for index in range(30)], "label;pixel1;pixel2;pixel3", ";")
    write_numbers(folder / "unnamed.csv", [[index % 3, index, 1, 2] for index in range(30)], "label,pixel1,,pixel3")
    write_numbers(folder / "not_numbers.csv", [[index % 3, index, "abc" if index == 7 else 1, 2] for index in range(30)])
    for name, text in {
        "nan_dropout.toml": "dropout = nan\n",
        "inf_learning_rate.toml": "learning_rate = inf\n",
        "nan_l2.toml": 'recipe = "mlp"\nl2 = nan\n',
        "big_seed.toml": f"seed = {2**32}\n",
        "empty_output.toml": 'output_dir = ""\n',
        "huge_integer.toml": f"epochs = {'9' * 5000}\n",
        "tune_key_in_plain_run.toml": "epochs = 1\n[tune]\nbogus = [1, 2]\n",
        "fixed_value_below_tune.toml": "[tune]\ndropout = [0.1, 0.2]\nepochs = 1\n",
        "wrong_type.toml": 'epochs = "one"\n',
        "recipe_number.toml": "recipe = 5\n",
    }.items():
        (folder / name).write_text(text)
    (folder / "latin1.toml").write_bytes("# préréglage\nepochs = 2\n".encode("latin-1"))
    (folder / "utf32.csv").write_bytes("text,label\nhello,ham\n".encode("utf-32"))
    (folder / "utf16_tf_config.json").write_bytes(b"\xff\xfe{\xff")
    (folder / "notes.txt").write_text("a regular file that no output may be put under")
    texts = TextFeatures({"tokens": TextVectorizer("sequences", max_tokens=100)}).fit(TEXTS)
    write_finished_run(folder / "text_run", texts, ["ham", "spam"])
    frame = pd.read_csv(folder / "numbers.csv")
    scaler = preprocessing.StandardScaler().fit(frame.drop(columns=["label"]))
    write_finished_run(folder / "number_run", scaler, ["0", "1", "2"])
    (write_finished_run(folder / "bad_config_run", texts, ["ham", "spam"]) / "config.json").write_text("{not json")
    (write_finished_run(folder / "list_config_run", texts, ["ham", "spam"]) / "config.json").write_text("[1, 2]")
    (write_finished_run(folder / "bad_metrics_run", texts, ["ham", "spam"]) / "metrics.json").write_text("")
    (write_finished_run(folder / "bad_history_run", texts, ["ham", "spam"]) / "history.csv").write_bytes(b"\x89\x00,\x01\n")
    return folder


def folder_digest(folder):
    """Names and bytes of every file and folder below `folder` (links by their target's name)."""
    digest = hashlib.sha256()
    for path in sorted(pathlib.Path(folder).rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_symlink():
            digest.update(os.readlink(path).encode())
        elif path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_command(module, arguments, cwd):
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", module, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=environment_without_tf_config(PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO)),
    )


def imported_modules(result):
    return {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


def assert_refused(result, *fragments):
    """One line of stderr, `error: ...`, holding every fragment; exit status 2; no traceback."""
    result.stderr = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("import time:"))
    lines = error_lines(result)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# Each case: (command, arguments with {w} for the workspace, fragments the line must hold).
CASES = {
    # Data files.
    "tab-separated, a missing column": (TEXTCNN, ["--data", "{w}/texts.tsv", "--text-column", "body"], ["{w}/texts.tsv", "(columns: text, label)"]),
    "two columns of one name": (TEXTCNN, ["--data", "{w}/twice.csv"], ["{w}/twice.csv", "two columns named 'label'"]),
    "commas outside quotes": (TEXTCNN, ["--data", "{w}/unquoted.csv"], ["{w}/unquoted.csv", "more fields than its header"]),
    "zip of two files": (TEXTCNN, ["--data", "{w}/two.zip"], ["{w}/two.zip", "zip archive of 2 files"]),
    "a spreadsheet": (TEXTCNN, ["--data", "{w}/book.xlsx"], ["{w}/book.xlsx", "Save it as CSV"]),
    "a picture": (TEXTCNN, ["--data", "{w}/picture.csv"], ["{w}/picture.csv", "a PNG image"]),
    "a broken link": (TEXTCNN, ["--data", "{w}/broken.csv"], ["{w}/broken.csv", "which does not exist"]),
    "a folder as data": (TEXTCNN, ["--data", "{w}/a_folder"], ["{w}/a_folder", "is a folder", "{w}/a_folder/train.csv"]),
    "empty data": (TEXTCNN, ["--data", ""], ["--data is empty"]),
    "a device as data": (MLP, ["--data", "/dev/null"], ["/dev/null", "not a regular file"]),
    # Columns and values.
    "labels that are texts": (TEXTCNN, ["--data", "{w}/texts.csv", "--label-column", "text"], ["'text'", "looks like text, not class labels"]),
    "texts and labels swapped": (
        TEXTCNN, ["--data", "{w}/texts.csv", "--text-column", "label", "--label-column", "text"], ["looks like text", "--text-column"]
    ),
    "only infinite rows": (MLP, ["--data", "{w}/infinite.csv"], ["{w}/infinite.csv", "infinite values"]),
    "a stray word among numbers": (MLP, ["--data", "{w}/stray.csv"], ["'pixel1'", "'?'", "not a number"]),
    "decimal commas": (MLP, ["--data", "{w}/european.csv"], ["'pixel1'", "decimal comma"]),
    "an unnamed feature column": (MLP, ["--data", "{w}/unnamed.csv"], ["Column 3", "has no name"]),
    # Config values.
    "NaN learning rate": (TEXTCNN, ["--learning-rate", "nan"], ["--learning-rate", "finite", "nan"]),
    "infinite clipnorm": (TEXTCNN, ["--clipnorm=inf"], ["--clipnorm", "finite"]),
    "overflowing float": (MLP, ["--l1", "1e999"], ["--l1", "finite"]),
    "NaN dropout in a preset": (TEXTCNN, ["--config", "{w}/nan_dropout.toml"], ["--dropout", "finite"]),
    "infinite learning rate in a preset": (TEXTCNN, ["--config", "{w}/inf_learning_rate.toml"], ["--learning-rate", "finite"]),
    "NaN l2 in an MLP preset": (MLP, ["--config", "{w}/nan_l2.toml"], ["--l2", "finite"]),
    "seed of 2**32": (TEXTCNN, ["--seed", str(2**32)], ["--seed <= 4294967295"]),
    "seed of 2**32 in a preset": (TEXTCNN, ["--config", "{w}/big_seed.toml"], ["--seed <= 4294967295"]),
    "huge batch size": (TEXTCNN, ["--batch-size", str(10**12)], ["--batch-size <="]),
    "huge kernel size": (TEXTCNN, ["--kernel-sizes", "3,100000"], ["--kernel-sizes"]),
    "huge embeddings": (TEXTCNN, ["--embedding-dim", str(2**40)], ["--embedding-dim <="]),
    "huge sequence length": (TEXTCNN, ["--sequence-length", str(10**9)], ["--sequence-length <="]),
    "huge steps per execution": (TEXTCNN, ["--steps-per-execution", str(2**63)], ["--steps-per-execution <="]),
    "huge decay steps": (TEXTCNN, ["--decay-steps", str(2**31)], ["--decay-steps <="]),
    "huge epochs": (MLP, ["--epochs", str(10**10)], ["--epochs <="]),
    "huge hidden layer": (MLP, ["--hidden-units", "64,10000000"], ["--hidden-units"]),
    "huge vocabulary": (MLP, ["--max-features", str(10**12)], ["--max-features <="]),
    "a repeated kernel size": (TEXTCNN, ["--kernel-sizes", "3,3"], ["--kernel-sizes", "distinct"]),
    "an empty part in a comma list": (TEXTCNN, ["--kernel-sizes", "3,,5"], ["--kernel-sizes", "'3,,5'", "empty part"]),
    "an empty part in hidden units": (MLP, ["--hidden-units", "64,,32"], ["--hidden-units", "empty part"]),
    "a local cluster key given twice": (
        TEXTCNN, ["--strategy", "parameter_server", "--local-cluster", "workers=2,workers=3,ps=1"], ["--local-cluster", "once"]
    ),
    "a huge local cluster": (
        TEXTCNN, ["--strategy", "parameter_server", "--local-cluster", "workers=100000,ps=1"], ["--local-cluster", "from 1 to 32"]
    ),
    "UTF-32 data": (TEXTCNN, ["--data", "{w}/utf32.csv"], ["{w}/utf32.csv", "UTF-32", "UTF-8"]),
    # Presets and run folders.
    "a folder as --config": (TEXTCNN, ["--config", "{w}/a_folder"], ["--config {w}/a_folder is a folder"]),
    "a preset that is not UTF-8": (TEXTCNN, ["--config", "{w}/latin1.toml"], ["{w}/latin1.toml", "not UTF-8"]),
    "an empty --config": (TEXTCNN, ["--config", ""], ["--config is empty"]),
    "an unknown preset name": (TEXTCNN, ["--config", "sms_textcn"], ["no such file or bundled preset", "sms_textcnn"]),
    "an empty output_dir in a preset": (TEXTCNN, ["--config", "{w}/empty_output.toml"], ["output_dir to an empty path"]),
    "an integer too long to read in a preset": (TEXTCNN, ["--config", "{w}/huge_integer.toml"], ["number too long"]),
    "an unknown key in the [tune] table of a plain run": (
        TEXTCNN, ["--config", "{w}/tune_key_in_plain_run.toml"], ["[tune] bogus", "{w}/tune_key_in_plain_run.toml"]
    ),
    "a fixed value below the [tune] table": (
        TEXTCNN, ["--config", "{w}/fixed_value_below_tune.toml"], ["[tune] epochs", "belongs above the [tune] table"]
    ),
    "a value of the wrong type in a preset": (TEXTCNN, ["--config", "{w}/wrong_type.toml"], ["--config {w}/wrong_type.toml", "type int"]),
    "a recipe that is a number in a preset": (TEXTCNN, ["--config", "{w}/recipe_number.toml"], ["expected recipe to be one of"]),
    "an --output-dir inside a run folder": (
        COMMANDS, ["train", "textcnn", "--data", "{w}/texts.csv", "--output-dir", "{w}/text_run/nested"],
        ["inside the run folder {w}/text_run"],
    ),
    "an --output-dir whose config.json is a list": (
        COMMANDS, ["train", "textcnn", "--data", "{w}/texts.csv", "--output-dir", "{w}/list_config_run"], ["unreadable config.json"]
    ),
    "report on a damaged config.json": (COMMANDS, ["report", "{w}/bad_config_run"], ["{w}/bad_config_run/config.json is damaged"]),
    "compare a run whose config.json is a list": (
        COMMANDS, ["compare", "{w}/text_run", "{w}/list_config_run"], ["{w}/list_config_run/config.json is damaged", "not an object"]
    ),
    "report on an empty metrics.json": (COMMANDS, ["report", "{w}/bad_metrics_run"], ["{w}/bad_metrics_run/metrics.json is damaged"]),
    "compare a run with a damaged history": (
        COMMANDS, ["compare", "{w}/text_run", "{w}/bad_history_run"], ["{w}/bad_history_run/history.csv is damaged"]
    ),
    "report on a file": (COMMANDS, ["report", "{w}/notes.txt"], ["{w}/notes.txt is a file"]),
    "cluster check of a TF_CONFIG file that is not UTF-8": (
        COMMANDS, ["cluster", "check", "--tf-config", "{w}/utf16_tf_config.json"], ["{w}/utf16_tf_config.json", "not UTF-8"]
    ),
    "an empty --output-dir": (COMMANDS, ["train", "textcnn", "--data", "{w}/texts.csv", "--output-dir", ""], ["--output-dir is empty"]),
    "an --output-dir under a file": (
        COMMANDS, ["train", "textcnn", "--data", "{w}/texts.csv", "--output-dir", "{w}/notes.txt/run"], ["{w}/notes.txt is a file"]
    ),
    "an --output-dir holding another run": (
        COMMANDS, ["train", "textcnn", "--data", "{w}/texts.csv", "--output-dir", "{w}/text_run"], ["holds a run with a different config"]
    ),
    # Prediction inputs.
    "empty --text": (PREDICT, ["{w}/text_run", "--text", ""], ["--text ''", "empty"]),
    "blank --text among others": (PREDICT, ["{w}/text_run", "--text", "hello", "--text", "   "], ["--text '   '", "empty"]),
    "words in a numeric prediction CSV": (PREDICT, ["{w}/number_run", "--csv", "{w}/not_numbers.csv"], ["'pixel2'", "'abc'", "{w}/not_numbers.csv"]),
    "decimal commas in a prediction CSV": (PREDICT, ["{w}/number_run", "--csv", "{w}/european.csv"], ["'pixel1'", "decimal comma"]),
    "a folder as prediction CSV": (PREDICT, ["{w}/text_run", "--csv", "{w}/a_folder"], ["--csv {w}/a_folder", "is a folder"]),
    "a tab-separated prediction CSV without the text column": (
        PREDICT, ["{w}/text_run", "--csv", "{w}/texts.tsv", "--text-column", "body"], ["'body'", "(columns: text, label)"]
    ),
    # Outputs.
    "predict --output under a file": (
        PREDICT, ["{w}/text_run", "--csv", "{w}/texts.csv", "--output", "{w}/notes.txt/predictions.csv"], ["{w}/notes.txt is a file"]
    ),
    "predict --output in /proc": (PREDICT, ["{w}/text_run", "--csv", "{w}/texts.csv", "--output", "/proc/predictions.csv"], ["kernel file system"]),
    "predict --output over the model": (
        PREDICT, ["{w}/text_run", "--csv", "{w}/texts.csv", "--output", "{w}/text_run/model.keras"], ["would overwrite model.keras"]
    ),
    "predict --output over the --csv": (
        PREDICT, ["{w}/text_run", "--csv", "{w}/texts.csv", "--output", "{w}/texts.csv"], ["is an input of this command"]
    ),
    "predict --output a folder": (PREDICT, ["{w}/text_run", "--csv", "{w}/texts.csv", "--output", "{w}/a_folder"], ["is a folder"]),
    "predict --output in a missing folder": (
        PREDICT, ["{w}/text_run", "--text", "hi", "--output", "{w}/absent/p.csv"], ["folder {w}/absent does not exist"]
    ),
    "predict --output empty": (PREDICT, ["{w}/text_run", "--text", "hi", "--output", ""], ["--output is empty"]),
    "predict a file as run folder": (PREDICT, ["{w}/notes.txt", "--text", "hi"], ["{w}/notes.txt is a file"]),
    "compare --output empty": (COMMANDS, ["compare", "{w}/text_run", "--output", ""], ["--output is empty"]),
    "kerastrain train, NaN learning rate": (
        COMMANDS, ["train", "textcnn", "--data", "{w}/texts.csv", "--learning-rate", "nan"], ["--learning-rate", "finite"]
    ),
    "kerastrain train, a folder as data": (COMMANDS, ["train", "mlp", "--data", "{w}/a_folder"], ["is a folder"]),
    "kerastrain predict, empty --text": (COMMANDS, ["predict", "{w}/text_run", "--text", ""], ["--text ''", "empty"]),
    "compare --output under a file": (COMMANDS, ["compare", "{w}/text_run", "--output", "{w}/notes.txt/c.png"], ["{w}/notes.txt is a file"]),
    "compare --output in /sys": (COMMANDS, ["compare", "{w}/text_run", "--output", "/sys/compare.png"], ["kernel file system"]),
    "compare --output over a run's picture": (
        COMMANDS, ["compare", "{w}/text_run", "{w}/number_run", "--output", "{w}/number_run/curves.png"], ["would overwrite curves.png"]
    ),
    "compare --output in a missing folder": (COMMANDS, ["compare", "{w}/text_run", "--output", "{w}/absent/c.png"], ["does not exist"]),
}


def fill(values, workspace):
    return [str(value).replace("{w}", str(workspace)) for value in values]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_in_one_line_changing_nothing(case, workspace, tmp_path):
    command, arguments, fragments = CASES[case]
    arguments = fill(arguments, workspace)
    if command in (TEXTCNN, MLP):
        if "--data" not in arguments and "--config" not in arguments:
            arguments = ["--data", str(workspace / ("texts.csv" if command == TEXTCNN else "numbers.csv")), *arguments]
        arguments += ["--output-dir", str(tmp_path / "run")]
    before = folder_digest(workspace)
    result = run_command(command, arguments, cwd=tmp_path)
    assert_refused(result, *fill(fragments, workspace))
    assert "tensorflow" not in imported_modules(result), "refused only after TensorFlow started"
    assert folder_digest(workspace) == before
    assert os.listdir(tmp_path) == [], "a refused command wrote into its working folder"


def test_unreadable_data_and_unwritable_outputs_for_a_user_without_root_rights(workspace):
    with shared_folder() as folder:
        folder = pathlib.Path(folder)
        run = folder / "text_run"
        shutil.copytree(workspace / "text_run", run)
        texts = write_text_table(folder / "texts.csv")
        locked_data = write_text_table(folder / "locked.csv")
        locked_data.chmod(0o000)
        read_only = folder / "read_only"
        read_only.mkdir()
        read_only.chmod(0o555)
        runs = folder / "runs"
        runs.mkdir()
        runs.chmod(0o777)
        cases = [
            (TEXTCNN, ["--data", locked_data, "--output-dir", runs / "new"], [f"--data {locked_data} cannot be read"]),
            (
                PREDICT,
                [run, "--csv", texts, "--output", read_only / "p.csv"],
                [f"{read_only / 'p.csv'}", "permission denied"],
            ),
            (COMMANDS, ["compare", run, "--output", read_only / "c.png"], ["permission denied"]),
        ]
        for command, arguments, fragments in cases:
            before = folder_digest(folder)
            result = run_module_as_other_user(command, arguments, cwd=runs)
            assert_refused(result, *fragments)
            assert folder_digest(folder) == before


@pytest.mark.slow
def test_rows_without_text_get_an_empty_prediction_and_a_count(finished_textcnn_run, tmp_path):
    run_dir, _ = finished_textcnn_run
    path = tmp_path / "new.csv"
    path.write_text('text,label\nhello there,ham\n,ham\n"   ",spam\nWINNER claim your prize now,spam\n')
    output = tmp_path / "predictions.csv"
    result = run_command(PREDICT, [run_dir, "--csv", path, "--output", output], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"2 rows of {path} have no text; their prediction is left empty" in result.stderr
    predictions = pd.read_csv(output, keep_default_na=False)["prediction"].tolist()
    assert predictions[1] == predictions[2] == ""
    assert predictions[0] in ("ham", "spam") and predictions[3] in ("ham", "spam")


def test_report_and_compress_refuse_a_run_folder_they_cannot_write(workspace):
    with shared_folder() as folder:
        run = pathlib.Path(folder) / "text_run"
        shutil.copytree(workspace / "text_run", run)
        run.chmod(0o555)
        before = folder_digest(folder)
        for command, arguments in ((COMMANDS, ["report", run]), ("kerastrain.compress", [run])):
            result = run_module_as_other_user(command, arguments, cwd=folder)
            assert_refused(result, f"RUN_DIR {run}", "permission denied")
            assert folder_digest(folder) == before
        run.chmod(0o755)
