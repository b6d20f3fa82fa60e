"""`--tune`: the [tune] table of a preset, its checks, the median stopping rule, and
searches end to end on small real data."""

import csv
import dataclasses
import json
import tomllib

import pytest

from conftest import REPO, TINY_TEXTCNN, error_lines, run_module
from kerastrain import config as config_lib
from kerastrain.search import search_space
from kerastrain.config import MLPConfig, TextCNNConfig
from kerastrain.errors import UsageError

CONTRACT_COLUMNS = ["trial", "status"]  # then one column per searched field, then:
METRIC_COLUMNS = ["val_loss", "val_accuracy"]
STATUSES = {"completed", "pruned", "failed"}

EXAMPLE_TABLE = {
    "max_trials": 8,
    "learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
    "filters": [64, 128, 256],
    "kernel_sizes": ["3,4,5", "2,3,4"],
    "dropout": {"min": 0.0, "max": 0.6, "step": 0.1},
    "optimizer": ["adam", "rmsprop", "nesterov"],
}


def write_preset(path, text):
    path.write_text(text)
    return path


# The search space.


def test_example_table_parses_into_ranges_and_choices():
    space = search_space.parse_search_space(EXAMPLE_TABLE, TextCNNConfig)
    assert space.max_trials == 8 and space.algorithm == "bayesian"
    assert space.names == ["learning_rate", "filters", "kernel_sizes", "dropout", "optimizer"]
    by_name = {parameter.name: parameter for parameter in space.parameters}
    assert (by_name["learning_rate"].kind, by_name["learning_rate"].sampling) == ("float", "log")
    assert (by_name["dropout"].minimum, by_name["dropout"].maximum, by_name["dropout"].step) == (0.0, 0.6, 0.1)
    assert by_name["filters"].values == (64, 128, 256)
    assert by_name["kernel_sizes"].values == ("3,4,5", "2,3,4")


def test_comma_fields_take_strings_or_lists_and_int_ranges_stay_ints():
    space = search_space.parse_search_space(
        {"hidden_units": ["64", [128, 64]], "epochs": {"min": 2, "max": 6, "step": 2}}, MLPConfig
    )
    hidden, epochs = space.parameters
    assert hidden.values == ("64", "128,64")
    assert epochs.kind == "int" and isinstance(epochs.minimum, int)


def test_hyperparameters_match_the_table():
    hyperparameters = search_space.to_hyperparameters(search_space.parse_search_space(EXAMPLE_TABLE, TextCNNConfig))
    space = {parameter.name: parameter for parameter in hyperparameters.space}
    assert type(space["learning_rate"]).__name__ == "Float" and space["learning_rate"].sampling == "log"
    assert type(space["filters"]).__name__ == "Choice" and list(space["filters"].values) == [64, 128, 256]
    assert list(space["kernel_sizes"].values) == ["3,4,5", "2,3,4"]


def test_trial_values_become_a_valid_config():
    overrides = search_space.trial_overrides(
        {"kernel_sizes": "2,3,4", "dropout": 0.30000000000000004, "learning_rate": 0.00123456789, "filters": 64},
        TextCNNConfig,
    )
    assert overrides == {"kernel_sizes": (2, 3, 4), "dropout": 0.3, "learning_rate": 0.00123457, "filters": 64}
    dataclasses.replace(TextCNNConfig(), **overrides).validate()


def test_preset_returns_the_tune_table_apart_and_a_plain_run_uses_the_base_values(tmp_path):
    preset = write_preset(
        tmp_path / "tune.toml", 'recipe = "textcnn"\nepochs = 3\n\n[tune]\nmax_trials = 2\nfilters = [8, 16]\n'
    )
    values, table = config_lib.read_preset(preset, TextCNNConfig)
    assert values == {"epochs": 3}
    assert table == {"max_trials": 2, "filters": [8, 16]}
    assert config_lib.load_preset(preset, TextCNNConfig) == {"epochs": 3}
    config = config_lib.resolve(TextCNNConfig, preset)
    assert (config.epochs, config.filters) == (3, TextCNNConfig().filters)


def test_shipped_tune_presets_parse():
    for name, config_class in (("sms_textcnn_tune", TextCNNConfig), ("digits_mlp_tune", MLPConfig)):
        path = REPO / "recipes" / f"{name}.toml"
        values, table = config_lib.read_preset(path, config_class)
        config_lib.resolve(config_class, path)
        assert search_space.parse_search_space(table, config_class, path).max_trials >= 2


@pytest.mark.parametrize(
    "table, named",
    [
        ({"num_filters": [8, 16]}, "[tune] num_filters"),
        ({"output_dir": ["a", "b"]}, "cannot be tuned"),
        ({"data": ["sms", "imdb"]}, "cannot be tuned"),
        ({"strategy": ["default", "mirrored"]}, "cannot be tuned"),
        ({"dropout": {"min": 0.5, "max": 0.1}}, "min < max"),
        ({"dropout": {"min": 0.1}}, "min and max"),
        ({"dropout": {"min": 0.1, "max": 1.5}}, "--dropout <= 0.95"),
        ({"learning_rate": {"min": 0.0, "max": 0.1, "sampling": "log"}}, "min > 0"),
        ({"learning_rate": {"min": 0.001, "max": 0.1, "sampling": "cubic"}}, "sampling"),
        ({"filters": {"min": 8.5, "max": 16}}, "an int"),
        ({"optimizer": {"min": 1, "max": 2}}, "number field"),
        ({"filters": ["many", 16]}, "type int"),
        ({"optimizer": ["adam", "adamw"]}, "one of"),
        ({"kernel_sizes": ["3,4", "3,x"]}, "separated by commas"),
        ({"filters": 16}, "fixed value belongs above"),
        ({"filters": [16]}, "at least two"),
        ({"filters": [16, 16]}, "twice"),
        ({"max_trials": 0, "filters": [8, 16]}, "max_trials"),
        ({"algorithm": "grid", "filters": [8, 16]}, "algorithm"),
        ({"max_trials": 3}, "names no field"),
    ],
)
def test_bad_search_spaces_name_the_key_and_the_fix(table, named):
    with pytest.raises(UsageError) as excinfo:
        search_space.parse_search_space(table, TextCNNConfig, "my.toml")
    message = str(excinfo.value)
    assert "\n" not in message and named in message and "my.toml" in message


def test_bad_search_space_exits_2_with_one_line(tmp_path):
    preset = write_preset(tmp_path / "bad.toml", '[tune]\ndropout = { min = 0.5, max = 0.1 }\n')
    result = run_module("kerastrain.recipes.textcnn", "--config", preset, "--tune", "--output-dir", tmp_path / "run")
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1 and "[tune] dropout" in lines[0] and "min < max" in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "arguments, named",
    [
        (["--tune"], "--config digits_mlp_tune"),  # no preset, so no [tune] table
        (["--config", "recipes/digits_mlp.toml", "--tune"], "[tune] table"),
        (["--config", "recipes/digits_mlp_tune.toml", "--tune", "--strategy", "mirrored"], "--strategy default"),
        (["--max-trials", "3"], "--max-trials only applies to --tune"),
    ],
)
def test_tune_command_errors_are_one_line(tmp_path, arguments, named):
    result = run_module("kerastrain.recipes.mlp", *arguments, "--output-dir", tmp_path / "run")
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0]


# The median stopping rule.


def stopping_after(curve, earlier_curves):
    from kerastrain.search import tuning
    from kerastrain.backend import keras

    callback = tuning.MedianStopping(earlier_curves)
    model = keras.Sequential()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(curve):
        callback.on_epoch_end(epoch, {"val_loss": value})
        if model.stop_training:
            break
    return callback.stopped_epoch


def test_median_stopping_stops_only_trials_worse_than_half_of_the_earlier_ones():
    earlier = [[1.0, 0.5, 0.4], [1.0, 0.6, 0.5], [1.0, 0.9, 0.8]]  # medians: 1.0, 0.6, 0.5
    assert stopping_after([1.0, 0.7, 0.6], earlier) == 1
    assert stopping_after([1.0, 0.55, 0.45], earlier) is None
    assert stopping_after([3.0, 0.59, 0.58], earlier) == 2  # the best so far counts, at each epoch
    assert stopping_after([9.0], earlier) is None  # the grace epoch
    assert stopping_after([1.0, 0.9, 0.9], earlier[:1]) is None  # too few earlier trials


def test_tuning_keeps_tensorflow_on_tf_keras():
    # KerasTuner imports Keras 3; kerastrain's trials must still be tf-keras end to end.
    import tensorflow as tf
    import tf_keras

    from kerastrain.search import tuning

    assert tf.keras.Model is tf_keras.Model
    assert issubclass(tuning.MedianStopping, tf_keras.callbacks.Callback)


def test_a_folder_with_another_search_or_another_run_is_refused(tmp_path):
    from kerastrain.search import tuning

    config = TextCNNConfig(output_dir=str(tmp_path / "run"), epochs=2)
    space = search_space.parse_search_space(EXAMPLE_TABLE, TextCNNConfig)
    project_dir = tmp_path / "run" / "tuning"
    tuning.check_search_folder(config, space, project_dir)  # new folder
    project_dir.mkdir(parents=True)
    tuning.write_json(str(project_dir / tuning.SEARCH), tuning.search_identity(config, space))
    tuning.check_search_folder(config, space, project_dir)  # the same search resumes
    bigger = search_space.parse_search_space({**EXAMPLE_TABLE, "max_trials": 20}, TextCNNConfig)
    tuning.check_search_folder(config, bigger, project_dir)  # a larger budget resumes too
    other_table = search_space.parse_search_space({**EXAMPLE_TABLE, "filters": [8, 16]}, TextCNNConfig)
    for other_config, other_space, named in (
        (config, other_table, "different [tune] filters"),
        (dataclasses.replace(config, epochs=3), space, "different epochs"),
    ):
        with pytest.raises(UsageError) as excinfo:
            tuning.check_search_folder(other_config, other_space, project_dir)
        assert named in str(excinfo.value) and "\n" not in str(excinfo.value)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.json").write_text("{}")
    with pytest.raises(UsageError, match="without a kerastrain search"):
        plain = dataclasses.replace(config, output_dir=str(tmp_path / "plain"))
        tuning.check_search_folder(plain, space, tmp_path / "plain" / "tuning")


# Searches end to end.


def read_trials(run_dir):
    with open(run_dir / "tuning" / "trials.csv", newline="") as file:
        return list(csv.DictReader(file))


def check_search_outputs(run_dir, config_class, searched, trials):
    """Checks trials.csv against the contract and best.toml against the best row; returns best.toml's config."""
    rows = read_trials(run_dir)
    with open(run_dir / "tuning" / "trials.csv", newline="") as file:
        assert next(csv.reader(file)) == CONTRACT_COLUMNS + searched + METRIC_COLUMNS
    assert [int(row["trial"]) for row in rows] == list(range(trials))
    assert {row["status"] for row in rows} <= STATUSES
    scored = [row for row in rows if row["status"] != "failed"]
    assert scored and all(0 <= float(row["val_accuracy"]) <= 1 for row in scored)
    best_row = min(scored, key=lambda row: float(row["val_loss"]))

    best_path = run_dir / "tuning" / "best.toml"
    assert config_lib.read_preset(best_path, config_class)[1] is None  # no [tune] table
    best = config_lib.resolve(config_class, best_path)
    for name in searched:
        value = getattr(best, name)
        written = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        assert written.lower() == best_row[name].lower(), name
    # The run folder is a finished run of the best config.
    stored = json.loads((run_dir / "config.json").read_text())["config"]
    assert {name: stored[name] for name in searched} == json.loads(
        json.dumps({name: getattr(best, name) for name in searched})
    )
    assert json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"] > 0
    return best


def test_textcnn_search_writes_trials_and_a_best_preset_and_resumes(tmp_path):
    preset = write_preset(
        tmp_path / "search.toml",
        'recipe = "textcnn"\ndata = "sms"\nmax_examples = 300\nepochs = 2\nbatch_size = 32\n'
        "jit_compile = false\nverbose = 0\n\n"
        "[tune]\nmax_trials = 3\nalgorithm = \"random\"\n"
        'learning_rate = { min = 1e-3, max = 3e-2, sampling = "log" }\n'
        'kernel_sizes = ["2,3", "3,4"]\n'
        "dropout = { min = 0.0, max = 0.4, step = 0.2 }\n",
    )
    run_dir = tmp_path / "run"
    arguments = ["--config", preset, "--tune", *TINY_TEXTCNN, "--output-dir", run_dir]
    result = run_module("kerastrain.recipes.textcnn", *arguments)
    assert result.returncode == 0, result.stderr
    best = check_search_outputs(run_dir, TextCNNConfig, ["learning_rate", "kernel_sizes", "dropout"], trials=3)
    assert str(run_dir / "tuning" / "best.toml") in result.stdout
    assert best.embedding_dim == 16 and best.max_examples == 300  # base values kept
    assert (run_dir / "tuning" / "oracle.json").is_file()

    # The same command resumes: no new trial, and the finished run stays as it is.
    rerun = run_module("kerastrain.recipes.textcnn", *arguments)
    assert rerun.returncode == 0, rerun.stderr
    assert len(read_trials(run_dir)) == 3
    assert "already holds this finished run" in rerun.stdout



def test_mlp_search_on_digits(tmp_path):
    preset = write_preset(
        tmp_path / "search.toml",
        'recipe = "mlp"\ndata = "digits"\nmax_examples = 300\nepochs = 2\njit_compile = false\nverbose = 0\n\n'
        '[tune]\nmax_trials = 2\nhidden_units = ["16", "32,16"]\nactivation = ["relu", "tanh"]\n'
        "learning_rate = { min = 3e-3, max = 3e-2, sampling = \"log\" }\n",
    )
    run_dir = tmp_path / "run"
    result = run_module("kerastrain.recipes.mlp", "--config", preset, "--tune", "--output-dir", run_dir)
    assert result.returncode == 0, result.stderr
    best = check_search_outputs(run_dir, MLPConfig, ["hidden_units", "activation", "learning_rate"], trials=2)
    assert best.hidden_units in ((16,), (32, 16))
    assert tomllib.loads((run_dir / "tuning" / "best.toml").read_text())["recipe"] == "mlp"
