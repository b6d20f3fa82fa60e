"""Config dataclasses, TOML presets and flag parsing, in-process."""

import dataclasses
import json
import pathlib
import tomllib

import pytest

from kerastrain import cli
from kerastrain.config import MLPConfig, TextCNNConfig, load_preset, resolve
from kerastrain.errors import UsageError

PRESETS = sorted((pathlib.Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"))
CONFIG_CLASSES = {"textcnn": TextCNNConfig, "mlp": MLPConfig}


def parse(argv, config_class=TextCNNConfig):
    return cli.parse_command(config_class, [str(part) for part in argv], "test", "test recipe").config


def write_preset(tmp_path, text, name="preset.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_usage_error_names(excinfo, *fragments):
    message = str(excinfo.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


# Defaults.


@pytest.mark.parametrize("config_class", [TextCNNConfig, MLPConfig])
def test_defaults_validate(config_class):
    config = config_class()
    config.validate()
    assert resolve(config_class) == config


@pytest.mark.parametrize("config_class", [TextCNNConfig, MLPConfig])
def test_no_flags_give_the_defaults(config_class):
    assert parse([], config_class) == config_class()


def test_recipe_specific_defaults():
    assert TextCNNConfig().data == "sms"
    assert TextCNNConfig().kernel_sizes == (3, 4, 5)
    assert MLPConfig().data == "digits"
    assert MLPConfig().hidden_units == (256, 128)
    assert TextCNNConfig().output_dir == MLPConfig().output_dir == ""  # chosen per run (see run_folder)


def test_tuple_defaults_are_not_shared_between_instances():
    first, second = TextCNNConfig(), TextCNNConfig()
    assert first.kernel_sizes == second.kernel_sizes
    assert isinstance(first.kernel_sizes, tuple)


# Bad values from flags.


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--epochs", "-1"], "--epochs"),
        (["--epochs", "0"], "--epochs"),
        (["--batch-size", "0"], "--batch-size"),
        (["--learning-rate", "0"], "--learning-rate"),
        (["--dropout", "0.99"], "--dropout"),
        (["--momentum", "1.5"], "--momentum"),
        (["--max-examples", "-5"], "--max-examples"),
        (["--validation-fraction", "0.6"], "--validation-fraction"),
        (["--validation-fraction", "0.5", "--test-fraction", "0.4"], "--validation-fraction"),
        (["--validation-fraction", "0.45", "--test-fraction", "0.45"], "--test-fraction"),
        (["--cpu-devices", "2"], "--cpu-devices"),
        (["--cpu-devices", "2", "--strategy", "one_device"], "--cpu-devices"),
        (["--kernel-sizes", "3,x"], "--kernel-sizes"),
        (["--kernel-sizes", "3,-4"], "--kernel-sizes"),
        (["--kernel-sizes", "3,0"], "--kernel-sizes"),
        (["--kernel-sizes", ","], "--kernel-sizes"),
        (["--optimizer", "adamw"], "--optimizer"),
        (["--schedule", "linear"], "--schedule"),
        (["--precision", "float16"], "--precision"),
        (["--strategy", "tpu"], "--strategy"),
        (["--verbose", "3"], "--verbose"),
        (["--epochs", "two"], "--epochs"),
        (["--learning-rate", "fast"], "--learning-rate"),
        (["--ngram-max", "6"], "--ngram-max"),
        (["--max-tokens", "1"], "--max-tokens"),
        (["--no-such-flag", "1"], "--no-such-flag"),
    ],
)
def test_bad_textcnn_flags_raise_usage_error_naming_the_flag(argv, flag):
    with pytest.raises(UsageError) as excinfo:
        parse(argv)
    assert_usage_error_names(excinfo, flag)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--hidden-units", "0,128"], "--hidden-units"),
        (["--hidden-units", "128,a"], "--hidden-units"),
        (["--activation", "softmax"], "--activation"),
        (["--initializer", "zeros"], "--initializer"),
        (["--text-features", "embeddings"], "--text-features"),
        (["--l1", "-0.1"], "--l1"),
        (["--batch-size", "0"], "--batch-size"),
    ],
)
def test_bad_mlp_flags_raise_usage_error_naming_the_flag(argv, flag):
    with pytest.raises(UsageError) as excinfo:
        parse(argv, MLPConfig)
    assert_usage_error_names(excinfo, flag)


def test_range_error_says_what_was_expected_and_received():
    with pytest.raises(UsageError) as excinfo:
        parse(["--epochs", "-1"])
    assert_usage_error_names(excinfo, "Expected --epochs >= 1", "epochs=-1")


def test_fraction_sum_error_names_both_values():
    with pytest.raises(UsageError) as excinfo:
        parse(["--validation-fraction", "0.5", "--test-fraction", "0.4"])
    assert_usage_error_names(excinfo, "0.9", "0.5", "0.4")


def test_cpu_devices_error_names_the_strategy():
    with pytest.raises(UsageError) as excinfo:
        parse(["--cpu-devices", "4"])
    assert_usage_error_names(excinfo, "--strategy mirrored", "strategy=default")


def test_cpu_devices_with_mirrored_is_accepted():
    config = parse(["--strategy", "mirrored", "--cpu-devices", "2"])
    assert (config.strategy, config.cpu_devices) == ("mirrored", 2)


def test_one_cpu_device_is_accepted_without_mirrored():
    assert parse(["--cpu-devices", "1"]).cpu_devices == 1


@pytest.mark.parametrize(
    "config_class, argv, fragments",
    [
        (TextCNNConfig, ["--momentum", "0.5"], ["--momentum only applies with --optimizer momentum or nesterov", "optimizer='adam'"]),
        (TextCNNConfig, ["--decay-steps", "10"], ["--decay-steps", "schedule='constant'"]),
        (MLPConfig, ["--decay-rate", "0.3"], ["--decay-rate", "--schedule exponential, inverse_time or step", "schedule='cosine'"]),
        (TextCNNConfig, ["--ngram-weighting", "idf", "--ngram-start", "naive_bayes"], ["--ngram-start", "--ngram-weighting nb", "ngram_weighting='idf'"]),
        (TextCNNConfig, ["--ngram-embedding-dim", "8"], ["--ngram-embedding-dim", "--ngram-weighting idf"]),
        (TextCNNConfig, ["--ngram-features", "0", "--ngram-max", "3"], ["--ngram-max", "--ngram-features above 0", "ngram_features=0"]),
        (TextCNNConfig, ["--ngram-features", "0", "--ngram-start", "naive_bayes"], ["--ngram-start", "--ngram-features above 0"]),
        (TextCNNConfig, ["--no-embeddings-trainable"], ["--no-embeddings-trainable only applies with --embeddings PATH"]),
        (TextCNNConfig, ["--augment-rate", "0.2"], ["--augment-rate only applies with --augment", "augment=False"]),
        (MLPConfig, ["--no-augment", "--augment-shift", "2"], ["--augment-shift only applies with --augment"]),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) and value[0].startswith("--") else None,
)
def test_a_setting_that_would_do_nothing_is_refused_with_what_it_needs(config_class, argv, fragments):
    with pytest.raises(UsageError) as excinfo:
        parse(argv, config_class)
    assert_usage_error_names(excinfo, *fragments, "Drop ")


@pytest.mark.parametrize(
    "config_class, argv",
    [
        (TextCNNConfig, ["--optimizer", "nesterov", "--momentum", "0.5"]),
        (TextCNNConfig, ["--schedule", "exponential", "--decay-steps", "10", "--decay-rate", "0.3"]),
        (MLPConfig, ["--decay-steps", "100"]),
        (TextCNNConfig, ["--ngram-weighting", "idf", "--ngram-embedding-dim", "8"]),
        (TextCNNConfig, ["--ngram-start", "naive_bayes", "--ngram-max", "3"]),
        (TextCNNConfig, ["--embeddings", "vectors.vec", "--no-embeddings-trainable"]),
        (TextCNNConfig, ["--augment", "--augment-rate", "0.2"]),
        (MLPConfig, ["--augment-shift", "2"]),
        (TextCNNConfig, ["--ngram-features", "0"]),
    ],
)
def test_a_setting_with_what_it_needs_is_accepted(config_class, argv):
    parse(argv, config_class)


def test_a_preset_setting_that_would_do_nothing_is_refused(tmp_path):
    path = write_preset(tmp_path, 'recipe = "textcnn"\naugment_rate = 0.2\n')
    with pytest.raises(UsageError) as excinfo:
        parse(["--config", path])
    assert_usage_error_names(excinfo, "--augment-rate only applies with --augment")
    assert parse(["--config", path, "--augment"]).augment_rate == 0.2


def test_the_limits_table_of_the_docs_is_every_field_s_limits():
    """docs/bad-input.md lists each numeric setting's smallest and largest value and its recipes."""
    import re

    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "bad-input.md").read_text()
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\| `--([a-z0-9-]+)`(?: \(each\))? \| ([^|]+) \| ([^|]+) \| (\w+) \|$", line)
        if match:
            flag, smallest, largest, recipes = match.groups()
            number = lambda text: eval(text.replace(",", ""), {"__builtins__": {}})  # "2**31 - 1", "1,000"
            rows[flag.replace("-", "_")] = (number(smallest), number(largest), recipes)
    documented = {}
    for recipe, config_class in CONFIG_CLASSES.items():
        for item in dataclasses.fields(config_class):
            limits = (item.metadata.get("minimum"), item.metadata.get("maximum"))
            if limits != (None, None):
                documented.setdefault(item.name, (limits, set()))[1].add(recipe)
    assert set(rows) == set(documented)
    for name, (limits, recipes) in documented.items():
        smallest, largest, recipe_column = rows[name]
        assert (smallest, largest) == limits, name
        assert recipe_column == ("both" if len(recipes) == 2 else recipes.pop()), name


def test_fractions_just_below_the_limit_are_accepted():
    config = parse(["--validation-fraction", "0.4", "--test-fraction", "0.45"])
    assert config.validation_fraction + config.test_fraction < 0.9


# Flags that parse.


def test_flags_parse_into_typed_values():
    config = parse(
        [
            "--epochs", "3", "--learning-rate", "0.01", "--kernel-sizes", "2,3",
            "--no-lowercase", "--tensorboard", "--optimizer", "nesterov", "--verbose", "0",
        ]
    )  # fmt: skip
    assert config.epochs == 3
    assert config.learning_rate == pytest.approx(0.01)
    assert config.kernel_sizes == (2, 3)
    assert config.lowercase is False
    assert config.tensorboard is True
    assert config.optimizer == "nesterov"
    assert config.verbose == 0


def test_kernel_sizes_tolerate_spaces_and_a_trailing_comma():
    assert parse(["--kernel-sizes", "3, 4,5,"]).kernel_sizes == (3, 4, 5)


def test_negative_numbers_are_values_not_flags():
    with pytest.raises(UsageError) as excinfo:
        parse(["--seed", "-3"])
    assert_usage_error_names(excinfo, "--seed", "seed=-3")


def test_parse_command_reports_debug():
    assert cli.parse_command(TextCNNConfig, ["--debug"], "test", "").debug is True
    assert cli.parse_command(TextCNNConfig, [], "test", "").debug is False


@pytest.mark.parametrize("config_class", [TextCNNConfig, MLPConfig])
def test_parser_has_one_flag_per_field(config_class):
    parser = cli.build_parser(config_class, "test", "")
    options = {option for action in parser._actions for option in action.option_strings}
    for item in dataclasses.fields(config_class):
        assert "--" + item.name.replace("_", "-") in options
    assert "--config" in options and "--debug" in options


def test_help_shows_defaults():
    help_text = cli.build_parser(TextCNNConfig, "textcnn", "A TextCNN.").format_help()
    assert "--kernel-sizes" in help_text
    assert "(default: 3,4,5)" in help_text
    assert "(default: 10)" in help_text


def test_parser_error_is_a_usage_error_not_a_system_exit():
    parser = cli.build_parser(TextCNNConfig, "textcnn", "")
    with pytest.raises(UsageError) as excinfo:
        parser.parse_args(["--epochs"])
    assert_usage_error_names(excinfo, "--epochs", "textcnn --help")


# Bad values from presets.


def test_unknown_optimizer_in_a_preset(tmp_path):
    preset = write_preset(tmp_path, 'optimizer = "adamw"\n')
    with pytest.raises(UsageError) as excinfo:
        resolve(TextCNNConfig, preset)
    assert_usage_error_names(excinfo, "--optimizer", "adamw", "adam")


@pytest.mark.parametrize(
    "text, flag",
    [
        ("epochs = -1\n", "--epochs"),
        ("epochs = 2.5\n", "--epochs"),
        ('epochs = "2"\n', "--epochs"),
        ("epochs = true\n", "--epochs"),
        ("batch_size = 0\n", "--batch-size"),
        ('lowercase = "yes"\n', "--lowercase"),
        ("kernel_sizes = [3, 4.5]\n", "--kernel-sizes"),
        ("kernel_sizes = []\n", "--kernel-sizes"),
        ('kernel_sizes = "3,4,5"\n', "--kernel-sizes"),
        ("validation_fraction = 0.5\ntest_fraction = 0.45\n", "--validation-fraction"),
        ("cpu_devices = 3\n", "--cpu-devices"),
    ],
    ids=lambda value: value.split("\n")[0].replace(" ", "") if "=" in value else None,
)
def test_bad_preset_values_raise_usage_error_naming_the_flag(tmp_path, text, flag):
    preset = write_preset(tmp_path, text)
    with pytest.raises(UsageError) as excinfo:
        resolve(TextCNNConfig, preset)
    assert_usage_error_names(excinfo, flag)


@pytest.mark.parametrize(
    "text, flag",
    [
        # The cross-field checks of validate() run before the type checks, and the
        # comma-list check iterates before it checks the type: these give a
        # TypeError traceback instead of a one-line UsageError.
        ('validation_fraction = "0.1"\n', "--validation-fraction"),
        ('test_fraction = "0.2"\n', "--test-fraction"),
        ('cpu_devices = "2"\n', "--cpu-devices"),
        ("kernel_sizes = 3\n", "--kernel-sizes"),
    ],
    ids=lambda value: value.split("\n")[0].replace(" ", "") if "=" in value else None,
)
def test_wrongly_typed_preset_values_raise_usage_error_not_type_error(tmp_path, text, flag):
    preset = write_preset(tmp_path, text)
    with pytest.raises(UsageError) as excinfo:
        resolve(TextCNNConfig, preset)
    assert_usage_error_names(excinfo, flag)


def test_float_field_accepts_an_integer_in_a_preset(tmp_path):
    preset = write_preset(tmp_path, "learning_rate = 1\nl2 = 0\n")
    config = resolve(TextCNNConfig, preset)
    assert config.learning_rate == 1
    assert config.l2 == 0
    # As a float: TensorFlow refuses an integer learning rate in a decay schedule.
    assert isinstance(config.learning_rate, float) and isinstance(config.l2, float)


def test_a_preset_value_of_the_wrong_type_names_the_preset(tmp_path):
    preset = write_preset(tmp_path, 'epochs = "one"\n')
    with pytest.raises(UsageError, match=f"--config {preset}: Expected --epochs to be of type int"):
        resolve(TextCNNConfig, preset)


def test_a_preset_with_a_byte_order_mark_is_read(tmp_path):
    preset = tmp_path / "windows.toml"
    preset.write_bytes(b"\xef\xbb\xbfepochs = 3\n")
    assert resolve(TextCNNConfig, str(preset)).epochs == 3


def test_repeated_kernel_sizes_are_refused():
    with pytest.raises(UsageError, match="distinct widths"):
        resolve(TextCNNConfig, None, {"kernel_sizes": (3, 4, 3)})


# Preset loading and layering.


def test_preset_overrides_defaults(tmp_path):
    preset = write_preset(tmp_path, 'recipe = "textcnn"\nepochs = 5\nbatch_size = 16\nkernel_sizes = [2, 3]\n')
    config = resolve(TextCNNConfig, preset)
    assert config.epochs == 5
    assert config.batch_size == 16
    assert config.kernel_sizes == (2, 3)
    assert config.learning_rate == TextCNNConfig().learning_rate


def test_flags_override_preset(tmp_path):
    preset = write_preset(tmp_path, "epochs = 5\nbatch_size = 16\noptimizer = \"sgd\"\n")
    config = parse(["--config", preset, "--epochs", "2", "--optimizer", "rmsprop"])
    assert config.epochs == 2
    assert config.optimizer == "rmsprop"
    assert config.batch_size == 16
    assert config.seed == TextCNNConfig().seed


def test_flag_equal_to_the_default_still_overrides_preset(tmp_path):
    preset = write_preset(tmp_path, "epochs = 5\n")
    assert parse(["--config", preset, "--epochs", "10"]).epochs == 10


def test_preset_values_are_checked_after_flags_override_them(tmp_path):
    preset = write_preset(tmp_path, "epochs = -1\n")
    assert parse(["--config", preset, "--epochs", "2"]).epochs == 2


def test_load_preset_returns_tuples_for_lists(tmp_path):
    preset = write_preset(tmp_path, "hidden_units = [64, 32]\nrecipe = \"mlp\"\n")
    assert load_preset(preset, MLPConfig) == {"hidden_units": (64, 32)}


def test_preset_with_unknown_key(tmp_path):
    preset = write_preset(tmp_path, "epochs = 2\nnum_epochs = 3\n")
    with pytest.raises(UsageError) as excinfo:
        resolve(TextCNNConfig, preset)
    assert_usage_error_names(excinfo, "'num_epochs'", str(preset))


def test_preset_with_a_key_of_the_other_recipe(tmp_path):
    preset = write_preset(tmp_path, "hidden_units = [8]\n")
    with pytest.raises(UsageError) as excinfo:
        resolve(TextCNNConfig, preset)
    assert_usage_error_names(excinfo, "'hidden_units'")


def test_preset_for_the_wrong_recipe(tmp_path):
    preset = write_preset(tmp_path, 'recipe = "mlp"\nepochs = 2\n')
    with pytest.raises(UsageError) as excinfo:
        resolve(TextCNNConfig, preset)
    assert_usage_error_names(excinfo, "mlp", "textcnn", "kerastrain train mlp")


def test_textcnn_preset_refused_by_mlp(tmp_path):
    preset = write_preset(tmp_path, 'recipe = "textcnn"\n')
    with pytest.raises(UsageError) as excinfo:
        parse(["--config", preset], MLPConfig)
    assert_usage_error_names(excinfo, "kerastrain train textcnn")


def test_invalid_toml(tmp_path):
    preset = write_preset(tmp_path, "epochs = = 2\n[unclosed\n")
    with pytest.raises(UsageError) as excinfo:
        resolve(TextCNNConfig, preset)
    assert_usage_error_names(excinfo, "not valid TOML", str(preset))


def test_missing_preset_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(UsageError) as excinfo:
        parse(["--config", missing])
    assert_usage_error_names(excinfo, "--config", str(missing), "no such file")


def test_empty_preset_gives_defaults(tmp_path):
    preset = write_preset(tmp_path, "# nothing\n")
    assert resolve(MLPConfig, preset) == MLPConfig()


# compared_items.


def test_compared_items_ignore_output_dir_and_verbose():
    first = TextCNNConfig(output_dir="runs/a", verbose=0)
    second = TextCNNConfig(output_dir="elsewhere/b", verbose=2)
    assert first.compared_items() == second.compared_items()
    assert "output_dir" not in first.compared_items()
    assert "verbose" not in first.compared_items()


def test_compared_items_see_training_settings():
    base = TextCNNConfig().compared_items()
    assert TextCNNConfig(epochs=3).compared_items() != base
    assert TextCNNConfig(kernel_sizes=(2,)).compared_items() != base
    assert set(base) == {item.name for item in dataclasses.fields(TextCNNConfig)} - {
        "output_dir", "verbose", "evaluator_timeout", "cluster_timeout"
    }
    # How long an evaluator task or the chief waits says nothing about what the chief trains.
    assert TextCNNConfig(evaluator_timeout=60.0).compared_items() == base
    assert TextCNNConfig(cluster_timeout=30.0).compared_items() == base


def test_compared_items_match_their_json_round_trip():
    items = MLPConfig(hidden_units=(32, 16)).compared_items()
    assert items["hidden_units"] == [32, 16]
    assert json.loads(json.dumps(items)) == items


def test_to_dict_round_trips():
    config = MLPConfig(hidden_units=(8,), epochs=2)
    assert MLPConfig(**config.to_dict()) == config


# The presets shipped in recipes/.


def test_there_are_presets_for_both_recipes():
    recipes = {tomllib.loads(path.read_text()).get("recipe") for path in PRESETS}
    assert {"textcnn", "mlp"} <= recipes


@pytest.mark.parametrize("preset", PRESETS, ids=[path.name for path in PRESETS])
def test_every_shipped_preset_resolves_for_its_recipe(preset):
    values = tomllib.loads(preset.read_text())
    config_class = CONFIG_CLASSES[values.pop("recipe")]
    values.pop("tune", None)  # the search space of --tune (tests/test_tuning.py), not a field
    config = resolve(config_class, preset)
    for name, value in values.items():
        expected = tuple(value) if isinstance(value, list) else value
        assert getattr(config, name) == expected, name
    assert parse(["--config", preset, "--epochs", "1"], config_class).epochs == 1


@pytest.mark.parametrize("preset", PRESETS, ids=[path.name for path in PRESETS])
def test_every_shipped_preset_is_refused_by_the_other_recipe(preset):
    recipe = tomllib.loads(preset.read_text())["recipe"]
    other = MLPConfig if recipe == "textcnn" else TextCNNConfig
    with pytest.raises(UsageError) as excinfo:
        resolve(other, preset)
    assert_usage_error_names(excinfo, f"kerastrain train {recipe}")


def test_the_textcnn_refits_by_default_and_the_mlp_does_not():
    assert TextCNNConfig().refit is True
    assert MLPConfig().refit is False


@pytest.mark.parametrize("strategy", ["multi_worker_mirrored", "parameter_server"])
def test_a_cluster_job_keeps_its_early_stopped_model(strategy):
    from kerastrain import pipeline

    assert pipeline.refits(TextCNNConfig(strategy=strategy)) is False


@pytest.mark.parametrize("strategy", ["default", "one_device", "mirrored"])
def test_one_process_strategies_refit_unless_told_not_to(strategy):
    from kerastrain import pipeline

    assert pipeline.refits(TextCNNConfig(strategy=strategy)) is True
    assert pipeline.refits(TextCNNConfig(strategy=strategy, refit=False)) is False
