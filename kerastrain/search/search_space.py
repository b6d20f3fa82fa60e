"""The hyperparameter search space of `--tune`, read from a preset's `[tune]` table.

A preset declares what to search after its base values, keyed by config field
names:

```toml
recipe = "textcnn"
epochs = 5

[tune]
max_trials = 8
learning_rate = { min = 1e-4, max = 1e-2, sampling = "log" }
dropout = { min = 0.0, max = 0.6, step = 0.1 }
filters = [64, 128, 256]
kernel_sizes = ["3,4,5", "2,3,4"]
optimizer = ["adam", "rmsprop", "nesterov"]
```

A `{min, max}` table is a range (`step` and `sampling = "linear" | "log" |
"reverse_log"` are optional) of an int or float field; a list is a choice among
its values. Comma fields such as `kernel_sizes` take strings like `"3,4,5"`.
`max_trials` (default 10) is the trial budget and `algorithm` (`"bayesian"`,
the default, or `"random"`) how trials are picked.

Everything here is plain Python and checked before TensorFlow is imported, so a
bad search space fails at once with one line; only `to_hyperparameters` imports
KerasTuner.
"""

import dataclasses
import importlib
import math

from kerastrain import config as config_lib
from kerastrain.errors import UsageError

ALGORITHMS = ("bayesian", "random")
SAMPLINGS = ("linear", "log", "reverse_log")
DEFAULT_MAX_TRIALS = 10
EXAMPLE_PRESETS = {"TextCNNConfig": "sms_textcnn_tune", "MLPConfig": "digits_mlp_tune"}

# Fields that say what data to use, how to measure, or where and how fast to run:
# searching them would either change what the score means (data, split, seed)
# or not change the model at all (speed and output settings).
NOT_TUNABLE = (
    "data",
    "text_column",
    "label_column",
    "max_examples",
    "validation_fraction",
    "test_fraction",
    "seed",
    "precision",
    "strategy",
    "cpu_devices",
    "local_cluster",
    "steps_per_execution",
    "jit_compile",
    "tensorboard",
    "output_dir",
    "verbose",
)


@dataclasses.dataclass
class Parameter:
    """One searched field: a range (`minimum`, `maximum`) or a choice (`values`).

    Attributes:
        name: the config field.
        kind: `"int"`, `"float"` or `"choice"`.
        values: the choices, as KerasTuner takes them (comma fields as strings).
        minimum: the range's lower end.
        maximum: the range's upper end.
        step: the range's step, or `None`.
        sampling: `"linear"`, `"log"` or `"reverse_log"`.
    """

    name: str
    kind: str
    values: tuple = ()
    minimum: float = None
    maximum: float = None
    step: float = None
    sampling: str = "linear"


@dataclasses.dataclass
class SearchSpace:
    """A checked `[tune]` table.

    Attributes:
        parameters: the searched fields, in the table's order.
        max_trials: the trial budget.
        algorithm: `"bayesian"` or `"random"`.
        table: the `[tune]` table as written, to tell whether a resumed search
            is the same search.
    """

    parameters: list
    max_trials: int = DEFAULT_MAX_TRIALS
    algorithm: str = "bayesian"
    table: dict = dataclasses.field(default_factory=dict)

    @property
    def names(self):
        return [parameter.name for parameter in self.parameters]


def parse_search_space(table, config_class, source="the preset"):
    """Checks a `[tune]` table against a recipe's config fields.

    Args:
        table: the `[tune]` table, as `config.read_preset` returns it.
        config_class: the recipe's config dataclass.
        source: the preset's path, for error messages. Defaults to `"the preset"`.

    Returns:
        A `SearchSpace`.

    Raises:
        UsageError: naming the first bad key of the table and how to fix it.

    Example:

    ```python
    space = parse_search_space({"dropout": {"min": 0.1, "max": 0.5}}, TextCNNConfig)
    ```
    """
    fields = {item.name: item for item in dataclasses.fields(config_class)}
    max_trials = table.get("max_trials", DEFAULT_MAX_TRIALS)
    if not isinstance(max_trials, int) or isinstance(max_trials, bool) or max_trials < 1:
        raise UsageError(
            f"[tune] max_trials in {source}: expected a positive integer. Received: max_trials={max_trials!r}"
        )
    algorithm = table.get("algorithm", "bayesian")
    if algorithm not in ALGORITHMS:
        raise UsageError(
            f"[tune] algorithm in {source}: expected one of {', '.join(ALGORITHMS)}. "
            f"Received: algorithm={algorithm!r}"
        )
    parameters = []
    for name, value in table.items():
        if name in ("max_trials", "algorithm"):
            continue
        if name not in fields:
            raise UsageError(
                f"[tune] {name} in {source}: not a field of this recipe. Use a flag name with "
                "underscores (see --help), or max_trials or algorithm."
            )
        if name in NOT_TUNABLE:
            raise UsageError(
                f"[tune] {name} in {source}: {name} cannot be tuned (it changes the data, the "
                "measurement or only the speed). Set it above the [tune] table instead."
            )
        parameters.append(parse_parameter(fields[name], value, source))
    if not parameters:
        raise UsageError(
            f"[tune] in {source} names no field to search. Add one, like "
            "learning_rate = { min = 1e-4, max = 1e-2, sampling = \"log\" }; see "
            f"{example_preset(config_class)}."
        )
    return SearchSpace(parameters, max_trials, algorithm, dict(table))


def example_preset(config_class):
    """The shipped preset with a `[tune]` table for a recipe's config class."""
    return EXAMPLE_PRESETS.get(config_class.__name__, EXAMPLE_PRESETS["TextCNNConfig"])


def parse_parameter(item, value, source):
    """Checks one entry of a `[tune]` table; returns a `Parameter`."""
    name = item.name
    where = f"[tune] {name} in {source}"
    kind = config_lib.field_type(item)
    if isinstance(value, list):
        return parse_choice(item, kind, value, where)
    if isinstance(value, dict):
        return parse_range(item, kind, value, where)
    raise UsageError(
        f"{where}: expected a list of choices, like [a, b], or a range, like {{ min = 1, max = 8 }}. "
        f"Received: {name}={value!r} (a fixed value belongs above the [tune] table)"
    )


def parse_choice(item, kind, values, where):
    name = item.name
    if len(values) < 2:
        raise UsageError(f"{where}: expected at least two choices. Received: {name}={values!r}")
    choices = []
    for value in values:
        if kind is tuple:
            value = comma_integers(value, item, where)
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        check_in_field(item, value, where)
        choices.append(",".join(str(part) for part in value) if kind is tuple else value)
    if len(set(choices)) != len(choices):
        raise UsageError(f"{where}: a choice is listed twice. Received: {name}={values!r}")
    return Parameter(name, "choice", values=tuple(choices))


def parse_range(item, kind, table, where):
    name = item.name
    if kind not in (int, float):
        raise UsageError(
            f"{where}: a {{min, max}} range needs a number field; {name} is a {kind.__name__}. "
            "Give a list of choices instead."
        )
    unknown = sorted(set(table) - {"min", "max", "step", "sampling"})
    if unknown or "min" not in table or "max" not in table:
        raise UsageError(
            f"{where}: expected a range with min and max (and optional step, sampling). "
            f"Received: {name}={table!r}"
        )
    minimum, maximum, step = table["min"], table["max"], table.get("step")
    sampling = table.get("sampling", "linear")
    for key, value in (("min", minimum), ("max", maximum), ("step", step)):
        if value is None:
            continue
        number_types = (int,) if kind is int else (int, float)
        if not isinstance(value, number_types) or isinstance(value, bool):
            raise UsageError(
                f"{where}: expected {key} to be {'an int' if kind is int else 'a number'}. "
                f"Received: {key}={value!r}"
            )
    if not minimum < maximum:
        raise UsageError(f"{where}: expected min < max. Received: min={minimum!r}, max={maximum!r}")
    if step is not None and not (math.isfinite(step) and step > 0):  # NaN fails every comparison
        raise UsageError(f"{where}: expected a finite step > 0. Received: step={step!r}")
    if sampling not in SAMPLINGS:
        raise UsageError(
            f"{where}: expected sampling to be one of {', '.join(SAMPLINGS)}. Received: sampling={sampling!r}"
        )
    if sampling != "linear" and minimum <= 0:
        raise UsageError(f"{where}: {sampling} sampling needs min > 0. Received: min={minimum!r}")
    if sampling != "linear" and step is not None:
        raise UsageError(f"{where}: give step or {sampling} sampling, not both.")
    check_in_field(item, kind(minimum), where)
    check_in_field(item, kind(maximum), where)
    return Parameter(
        name,
        kind.__name__,
        minimum=kind(minimum),
        maximum=kind(maximum),
        step=None if step is None else kind(step),
        sampling=sampling,
    )


def comma_integers(value, item, where):
    """A comma field's choice, written `"3,4,5"` or `[3, 4, 5]`, as a tuple."""
    if isinstance(value, str):
        try:
            return tuple(int(part) for part in value.split(",") if part.strip())
        except ValueError:
            pass
    elif isinstance(value, list):
        return tuple(value)
    raise UsageError(
        f"{where}: expected each choice to be integers separated by commas, like \"3,4,5\". "
        f"Received: {value!r}"
    )


def check_in_field(item, value, where):
    """Checks a value against the field's own limits, naming the `[tune]` key."""
    try:
        config_lib.check_value(item, value)
    except UsageError as error:
        raise UsageError(f"{where}: {error}") from None


def to_hyperparameters(space):
    """The search space as `keras_tuner.HyperParameters`.

    Imports KerasTuner, which imports TensorFlow: import `kerastrain.backend`
    first (this module's callers do) so that TensorFlow's Keras is tf-keras.
    """
    importlib.import_module("kerastrain.backend")  # TF_USE_LEGACY_KERAS before TensorFlow starts
    import keras_tuner

    hyperparameters = keras_tuner.HyperParameters()
    for parameter in space.parameters:
        if parameter.kind == "choice":
            hyperparameters.Choice(parameter.name, list(parameter.values), ordered=False)
        else:
            declare = hyperparameters.Int if parameter.kind == "int" else hyperparameters.Float
            declare(
                parameter.name,
                parameter.minimum,
                parameter.maximum,
                step=parameter.step,
                sampling=parameter.sampling,
            )
    return hyperparameters


def trial_overrides(values, config_class):
    """A trial's hyperparameter values as config field values.

    Comma fields become tuples, and floats are rounded to 6 significant digits,
    so that the trial trains exactly what `best.toml` then says.

    Args:
        values: a dict from field name to the trial's value.
        config_class: the recipe's config dataclass.

    Returns:
        A dict for `dataclasses.replace(config, **overrides)`.
    """
    fields = {item.name: item for item in dataclasses.fields(config_class)}
    overrides = {}
    for name, value in values.items():
        kind = config_lib.field_type(fields[name])
        if kind is tuple:
            value = tuple(int(part) for part in str(value).split(","))
        elif kind is float:
            value = float(f"{float(value):.6g}")
        elif kind is int:
            value = int(value)
        overrides[name] = value
    return overrides
