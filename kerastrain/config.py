"""Recipe configurations: documented dataclasses, TOML presets and their checks.

A config is resolved in three layers, each overriding the one before: the
dataclass defaults, a preset (`--config sms_textcnn`, a bundled preset's name,
or `--config my_preset.toml`), then command-line flags. Only the entry points parse flags; what flows into the
library is the resolved dataclass.

This module imports neither TensorFlow nor pandas, so `--help` stays instant.
"""

import codecs
import dataclasses
import importlib.util
import json
import math
import pathlib
import tomllib
import typing

from kerastrain.errors import UsageError

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
SCHEDULES = ("constant", "exponential", "inverse_time", "cosine", "step")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "parameter_server")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal")
ACTIVATIONS = ("relu", "elu", "gelu", "selu", "tanh", "sigmoid", "swish")
TEXT_FEATURES = ("tfidf", "counts", "binary")
NGRAM_WEIGHTINGS = ("nb", "idf")
SCALINGS = ("auto", "per_feature", "global")
NGRAM_STARTS = ("logistic_regression", "naive_bayes")

# Fields that say where or how loudly to run, not what to train: two runs that
# differ only in these are the same run, so they may resume each other.
NOT_COMPARED_FIELDS = ("output_dir", "verbose", "evaluator_timeout", "cluster_timeout")

# NumPy's and scikit-learn's random states take seeds from 0 to 2**32 - 1.
LARGEST_SEED = 2**32 - 1
# Upper limits of the sizes: far above any model that fits in memory, and low
# enough that TensorFlow's int32 shapes and float32 weights never overflow.
LARGEST_LAYER = 65536
LARGEST_VOCABULARY = 10_000_000


# The concerns that `--help` groups the flags by, in the order it lists them.
GROUPS = ("data", "model", "training", "precision and speed", "distribution", "output")


def field(default, help, choices=None, minimum=None, maximum=None, group="training"):
    """A dataclass field that carries its flag help, its allowed values and its `--help` group.

    Args:
        default: the default value; a list or tuple becomes a tuple.
        help: one sentence on what the setting does.
        choices: the allowed values, or `None`. Defaults to `None`.
        minimum: the smallest allowed number, or `None`. Defaults to `None`.
        maximum: the largest allowed number, or `None`. Defaults to `None`.
        group: one of `GROUPS`, the `--help` section of its flag. Defaults to
            `"training"`.
    """
    if group not in GROUPS:
        raise ValueError(f"Expected group to be one of {GROUPS}. Received: group={group!r}")
    metadata = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum, "group": group}
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default_factory=lambda: tuple(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class TrainingConfig:
    """Settings that every recipe shares: data, split, optimizer, run folder."""

    data: str = field(
        "sms",
        "A CSV or .csv.gz file, or the name of a bundled or online dataset.",
        group="data",
    )
    text_column: str = field("text", "Column of the CSV that holds the text.", group="data")
    label_column: str = field("label", "Column of the CSV that holds the class label.", group="data")
    max_examples: int = field(
        0,
        "Use at most this many examples (stratified sample); 0 uses all.",
        minimum=0,
        maximum=2**63 - 1,
        group="data",
    )
    validation_fraction: float = field(
        0.1, "Fraction of the data held out for validation.", minimum=0.01, maximum=0.5, group="data")
    test_fraction: float = field(
        0.2, "Fraction of the data held out for the final test.", minimum=0.01, maximum=0.5, group="data")
    epochs: int = field(
        10, "Maximum number of passes over the training split.", minimum=1, maximum=1_000_000, group="training")
    batch_size: int = field(
        64, "Global batch size: the same under every strategy.", minimum=1, maximum=1_000_000, group="training")
    accumulate_steps: int = field(
        1,
        "Average the gradients of this many micro-batches of --batch-size per optimizer "
        "update (effective batch: N x --batch-size).",
        minimum=1,
        maximum=1000,
        group="training",
    )
    optimizer: str = field("adam", "Optimizer.", choices=OPTIMIZERS, group="training")
    learning_rate: float = field(1e-3, "Initial learning rate.", minimum=1e-12, maximum=10.0, group="training")
    momentum: float = field(
        0.9, "Momentum of the momentum and nesterov optimizers.", minimum=0.0, maximum=0.999999, group="training")
    schedule: str = field("constant", "Learning-rate schedule.", choices=SCHEDULES, group="training")
    decay_steps: int = field(
        1000,
        "Steps over which the schedule decays once (cosine: to zero); 0 takes every step the run "
        "plans (--epochs x steps per epoch).",
        minimum=0,
        maximum=2**31 - 1,
        group="training",
    )
    decay_rate: float = field(
        0.5, "Factor of exponential, inverse-time and step decay.", minimum=0.0, maximum=1.0, group="training")
    clipnorm: float = field(
        0.0, "Clip each gradient to this L2 norm; 0 disables clipping.", minimum=0.0, maximum=1e9, group="training")
    early_stopping_patience: int = field(
        3,
        "Epochs without validation-loss improvement before stopping; 0 disables.",
        minimum=0,
        maximum=1_000_000,
        group="training",
    )
    precision: str = field(
        "auto",
        "Float policy; auto takes mixed_float16 on GPUs with tensor cores and, on a CPU with "
        "bfloat16 units, mixed_bfloat16 only where a short preflight finds it at least 1.15x "
        "faster and the recipe allows it, float32 otherwise.",
        choices=PRECISIONS,
        group="precision and speed",
    )
    strategy: str = field("default", "tf.distribute strategy.", choices=STRATEGIES, group="distribution")
    cpu_devices: int = field(
        0,
        "Split the CPU into this many logical devices (mirrored on a CPU-only machine).",
        minimum=0,
        maximum=256,
        group="distribution",
    )
    local_cluster: str = field(
        "",
        "Run --strategy parameter_server on an in-process cluster of real gRPC servers, "
        "like workers=2,ps=1; empty reads the cluster from TF_CONFIG.",
        group="distribution",
    )
    evaluator_timeout: float = field(
        3600.0,
        "In a TF_CONFIG job's evaluator task: seconds to wait for the chief's next epoch checkpoint.",
        minimum=1.0,
        maximum=1e7,
        group="distribution",
    )
    steps_per_execution: int = field(
        8,
        "Training steps run per call into TensorFlow's graph.",
        minimum=1,
        maximum=1_000_000,
        group="precision and speed",
    )
    jit_compile: bool = field(
        False,
        "Compile the training step with XLA where the strategy allows it (validation and "
        "prediction run without XLA). Off by default: on CPUs it trained no faster, and it "
        "compiles again for each batch shape.",
        group="precision and speed",
    )
    tensorboard: bool = field(False, "Also write TensorBoard logs to OUTPUT_DIR/tensorboard.", group="output")
    seed: int = field(
        0,
        "Seeds Python, NumPy and TensorFlow, and the data split.",
        minimum=0,
        maximum=LARGEST_SEED,
        group="training",
    )
    output_dir: str = field(
        "",
        "Folder of this run; rerunning with the same folder resumes it. Not given: "
        "runs/RECIPE-DATA, plus a digest of the settings that differ from the defaults.",
        group="output",
    )
    verbose: int = field(1, "0: silent, 1: progress bar, 2: one line per epoch.", choices=(0, 1, 2), group="output")
    gradient_checkpointing: bool = field(
        False,
        "Recompute each hidden block's (MLP) or convolution branch's (TextCNN) activations in "
        "the backward pass instead of keeping them: less memory per step, about one more "
        "forward pass of time.",
        group="precision and speed",
    )
    cluster_timeout: float = field(
        600.0,
        "In a TF_CONFIG parameter-server job's chief: seconds to wait for the workers and parameter "
        "servers to accept connections, at the start and whenever a parameter server becomes "
        "unreachable, before exiting with status 138 so the job is retried.",
        minimum=1.0,
        maximum=1e7,
        group="distribution",
    )
    augment: bool = field(
        False,
        "Change each training batch at random, anew every epoch (text: word deletions and adjacent "
        "swaps; image-shaped numeric columns: shifts of a pixel or two); validation, test and "
        "prediction see the data unchanged.",
        group="training",
    )
    refit: bool = field(
        False,
        "Once early stopping has found the best epoch count, train a new model on the training "
        "and validation splits together for that many epochs and keep it; the test split stays "
        "held out. One-process strategies only: a cluster job keeps the early-stopped model.",
        group="training",
    )

    def validate(self):
        """Checks every value against its field's limits.

        Raises:
            UsageError: naming the first value out of range and what was expected.
        """
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            check_value(item, value)
            if field_type(item) is float and isinstance(value, int):
                # A preset's `learning_rate = 1` is a TOML integer; TensorFlow needs the float.
                setattr(self, item.name, float(value))
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise UsageError(
                "Expected --validation-fraction + --test-fraction below 0.9. Received: "
                f"{self.validation_fraction} + {self.test_fraction}"
            )
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise UsageError(
                "--tensorboard needs the tensorboard package, which TensorFlow 2.21 no longer installs. "
                'Run: pip install "kerastrain[tensorboard]" (or pip install tensorboard).'
            )
        if self.local_cluster and self.strategy != "parameter_server":
            raise UsageError(
                f"--local-cluster only applies to --strategy parameter_server. Received: strategy={self.strategy}"
            )
        if self.strategy == "parameter_server" and self.precision == "mixed_float16":
            raise UsageError(
                "tf-keras does not support --precision mixed_float16 under --strategy parameter_server. "
                "Use --precision mixed_bfloat16 (or float32, or auto)."
            )
        if self.strategy != "mirrored" and self.cpu_devices > 1:
            raise UsageError(
                f"--cpu-devices {self.cpu_devices} only applies to --strategy mirrored. "
                f"Received: strategy={self.strategy}"
            )

    def check_given_settings_apply(self, given):
        """Refuses a setting that was set explicitly but that this config's other values leave unused.

        A flag that silently does nothing (`--momentum` under Adam,
        `--augment-rate` without `--augment`) is almost always a mistake in
        the command, so it stops the run before anything is written.

        Args:
            given: the names of the settings that a preset, the flags or the
                caller set explicitly.

        Raises:
            UsageError: naming the first such setting and what it needs.
        """
        for name, requirements in self.setting_requirements().items():
            if name not in given:
                continue
            for needed, applies, needs in requirements:
                if not applies(self):
                    value = getattr(self, name)
                    flag = ("--no-" if value is False else "--") + name.replace("_", "-")
                    raise UsageError(
                        f"{flag} only applies with {needs}. Received: {needed}={getattr(self, needed)!r}. "
                        f"Drop {flag}, or pass {needs}."
                    )

    def setting_requirements(self):
        """For each setting that only some configs use: `(needed setting, test of the config, what to pass)` tuples."""
        return {
            "momentum": [
                ("optimizer", lambda c: c.optimizer in ("momentum", "nesterov"), "--optimizer momentum or nesterov"),
            ],
            "decay_steps": [("schedule", lambda c: c.schedule != "constant", "a --schedule other than constant")],
            "decay_rate": [
                ("schedule", lambda c: c.schedule in ("exponential", "inverse_time", "step"),
                 "--schedule exponential, inverse_time or step"),
            ],  # fmt: skip
        }

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """The config of a dict such as `config.json` holds: lists become tuples, unknown keys are left out.

        Settings that a run folder's config predates take their defaults.
        """
        known = {item.name for item in dataclasses.fields(cls)}
        return cls(**{name: tuple(value) if isinstance(value, list) else value for name, value in values.items() if name in known})

    def compared_items(self):
        """The settings that decide whether two runs are the same run."""
        values = json.loads(json.dumps(self.to_dict()))
        return {name: value for name, value in values.items() if name not in NOT_COMPARED_FIELDS}


def recipe_default(config_class, name, default):
    """The field `name` of `config_class` with the same help and limits, and another default."""
    metadata = config_class.__dataclass_fields__[name].metadata
    return field(
        default,
        metadata["help"],
        choices=metadata["choices"],
        minimum=metadata["minimum"],
        maximum=metadata["maximum"],
        group=metadata["group"],
    )


@dataclasses.dataclass
class TextCNNConfig(TrainingConfig):
    """A TextCNN (Kim 2014) on raw text, with an optional bag-of-n-grams branch."""

    # Refitting on the validation split too adds its examples to the final
    # model: see docs/text-models.md for what it measured.
    refit: bool = recipe_default(TrainingConfig, "refit", True)

    data: str = field(
        "sms",
        "A CSV or .csv.gz file with text and label columns, or a dataset name: "
        "sms (bundled), imdb, 20newsgroups (online).",
        group="data",
    )
    max_tokens: int = field(
        20000, "Vocabulary size, most frequent words first.", minimum=2, maximum=LARGEST_VOCABULARY, group="data")
    sequence_length: int = field(
        0,
        "Tokens kept per text; 0 picks the 95th percentile of the training texts.",
        minimum=0,
        maximum=100_000,
        group="data",
    )
    lowercase: bool = field(True, "Lowercase the text before tokenizing.", group="data")
    length_buckets: bool = field(
        True,
        "Batch training texts of similar length and cut each batch's padding to one of a few "
        "lengths; off pads every text to sequence_length.",
        group="precision and speed",
    )
    embedding_dim: int = field(
        128, "Size of the word embeddings.", minimum=1, maximum=LARGEST_LAYER, group="model")
    filters: int = field(
        128, "Convolution filters per kernel size.", minimum=1, maximum=LARGEST_LAYER, group="model")
    kernel_sizes: tuple = field(
        (3, 4, 5), "Comma-separated convolution widths.", minimum=1, maximum=1000, group="model")
    dropout: float = field(0.5, "Dropout rate before the classifier.", minimum=0.0, maximum=0.95, group="model")
    l2: float = field(0.0, "L2 penalty on the classifier weights.", minimum=0.0, maximum=10.0, group="model")
    ngram_features: int = field(
        20000,
        "Size of the word n-gram vocabulary of the linear bag-of-n-grams branch; 0 "
        "turns the branch off (plain TextCNN).",
        minimum=0,
        maximum=LARGEST_VOCABULARY,
        group="model",
    )
    ngram_max: int = field(2, "Longest word n-gram of that branch.", minimum=1, maximum=5, group="model")
    ngram_embedding_dim: int = field(
        32,
        "Size of that branch's n-gram embeddings (idf weighting only).",
        minimum=1,
        maximum=LARGEST_LAYER,
        group="model",
    )
    ngram_weighting: str = field(
        "nb",
        "Features of that branch: nb scales each present n-gram by its naive-Bayes log-count "
        "ratio for each class (one linear model per class, Wang and Manning 2012); idf sums "
        "n-gram embeddings weighted by TF-IDF.",
        choices=NGRAM_WEIGHTINGS,
        group="model",
    )
    embeddings: str = field(
        "",
        "Word vectors to start the word embeddings from: a word2vec/fastText (.vec) or GloVe "
        "text file, gzipped or not; empty starts from random vectors.",
        group="model",
    )
    embeddings_trainable: bool = field(
        True,
        "Fine-tune the word embeddings while training (off keeps the --embeddings vectors fixed).",
        group="model",
    )
    augment_rate: float = field(
        0.1,
        "Under --augment, the probability that each word of a training text is deleted, and that "
        "each pair of adjacent words is swapped.",
        minimum=0.0,
        maximum=0.5,
        group="training",
    )
    ngram_start: str = field(
        "logistic_regression",
        "Start of the nb n-gram branch: logistic_regression first fits NB-weighted logistic "
        "regression (C=1, one class against the rest) on the training split and starts the "
        "branch with its weights, then keeps them near it with the L2 penalty of that C; "
        "naive_bayes starts every weight at 1, the naive-Bayes classifier.",
        choices=NGRAM_STARTS,
        group="model",
    )
    ngram_example_dropout: float = field(
        0.5,
        "Share of the training examples in each batch whose n-gram branch output is zeroed, so "
        "that the convolutions learn to classify them on their own; prediction uses the branch "
        "for every text.",
        minimum=0.0,
        maximum=0.95,
        group="model",
    )

    def setting_requirements(self):
        has_branch = ("ngram_features", lambda c: c.ngram_features > 0, "--ngram-features above 0")
        requirements = super().setting_requirements()
        requirements.update(
            {name: [has_branch] for name in ("ngram_max", "ngram_weighting", "ngram_example_dropout")},
            ngram_start=[has_branch, ("ngram_weighting", lambda c: c.ngram_weighting == "nb", "--ngram-weighting nb")],
            ngram_embedding_dim=[
                has_branch, ("ngram_weighting", lambda c: c.ngram_weighting == "idf", "--ngram-weighting idf"),
            ],  # fmt: skip
            embeddings_trainable=[("embeddings", lambda c: bool(c.embeddings), "--embeddings PATH")],
            augment_rate=[("augment", lambda c: c.augment, "--augment")],
        )
        return requirements

    def validate(self):
        super().validate()
        if len(set(self.kernel_sizes)) != len(self.kernel_sizes):
            # One convolution per width: a repeated width would be a second,
            # identically shaped branch (and a clash of layer names).
            raise UsageError(
                "Expected --kernel-sizes to be distinct widths, like 3,4,5; raise --filters for more "
                f"filters of one width. Received: kernel_sizes={','.join(map(str, self.kernel_sizes))}"
            )


@dataclasses.dataclass
class MLPConfig(TrainingConfig):
    """A multilayer perceptron on numeric feature columns or on text features."""

    data: str = field(
        "digits",
        "A CSV or .csv.gz file of numeric feature columns and a label column (or a text "
        "column), or a dataset name: digits (bundled), sms (bundled text), mnist, "
        "20newsgroups (online).",
        group="data",
    )
    # A cosine decay over 30 planned epochs, with a patient early stop, and
    # augmentation wherever it applies (image-shaped columns of 16x16 and up):
    # see docs/mlp.md for what each measured on pixel data and on other tables.
    epochs: int = recipe_default(TrainingConfig, "epochs", 30)
    schedule: str = recipe_default(TrainingConfig, "schedule", "cosine")
    decay_steps: int = recipe_default(TrainingConfig, "decay_steps", 0)
    early_stopping_patience: int = recipe_default(TrainingConfig, "early_stopping_patience", 5)
    augment: bool = recipe_default(TrainingConfig, "augment", True)
    hidden_units: tuple = field(
        (256, 128), "Comma-separated sizes of the hidden layers.", minimum=1, maximum=LARGEST_LAYER, group="model")
    activation: str = field("relu", "Activation of the hidden layers.", choices=ACTIVATIONS, group="model")
    initializer: str = field(
        "he_normal", "Initializer of the hidden layers' weights.", choices=INITIALIZERS, group="model"
    )
    batch_normalization: bool = field(False, "Batch normalization after each hidden layer.", group="model")
    dropout: float = field(0.2, "Dropout rate after each hidden layer.", minimum=0.0, maximum=0.95, group="model")
    l1: float = field(0.0, "L1 penalty on the hidden layers' weights.", minimum=0.0, maximum=10.0, group="model")
    l2: float = field(0.0, "L2 penalty on the hidden layers' weights.", minimum=0.0, maximum=10.0, group="model")
    text_features: str = field(
        "tfidf", "Features of a text dataset: tfidf, counts or binary.", choices=TEXT_FEATURES, group="data"
    )
    max_features: int = field(
        5000, "Vocabulary size of text features.", minimum=2, maximum=LARGEST_VOCABULARY, group="data")
    ngram_max: int = field(1, "Longest word n-gram of text features.", minimum=1, maximum=5, group="data")
    scaling: str = field(
        "auto",
        "Standardization of numeric features: per_feature (each column by its own mean and "
        "deviation), global (one mean and deviation for all columns, as pixels need), or auto "
        "(global for image-shaped columns, else per_feature).",
        choices=SCALINGS,
        group="data",
    )
    augment_shift: int = field(
        0,
        "Under --augment, the largest shift in pixels of image-shaped features in each direction; "
        "0 picks one pixel per 28 of the image side, rounded (none for 8x8, 1 for 28x28).",
        minimum=0,
        maximum=8,
        group="training",
    )

    def setting_requirements(self):
        requirements = super().setting_requirements()
        requirements["augment_shift"] = [("augment", lambda c: c.augment, "--augment")]
        return requirements


def check_value(item, value):
    """Checks one config value against its field's type, choices and limits.

    Floats must be finite (a comparison with NaN is always false, so NaN would
    pass every limit), and every number must lie within the field's `minimum`
    and `maximum`; for a comma list of integers, each part must.

    Args:
        item: the `dataclasses.Field` of the value.
        value: the value, as a preset or a flag gives it.

    Raises:
        UsageError: naming the flag, what was expected and what was received.
    """
    flag = "--" + item.name.replace("_", "-")
    metadata = item.metadata
    minimum, maximum = metadata.get("minimum"), metadata.get("maximum")
    expected_type = field_type(item)
    if expected_type is tuple:
        if (
            not isinstance(value, tuple)
            or not value
            or not all(isinstance(part, int) and not isinstance(part, bool) and part > 0 for part in value)
        ):
            raise UsageError(
                f"Expected {flag} to be positive integers separated by commas, like 3,4,5. "
                f"Received: {item.name}={value!r}"
            )
        for part in value:
            if maximum is not None and part > maximum:
                raise UsageError(
                    f"Expected each part of {flag} <= {maximum}. Received: {item.name}={value!r}"
                )
        return
    if expected_type is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise UsageError(f"Expected {flag} to be a finite number. Received: {item.name}={value!r}") from None
    if not isinstance(value, expected_type) or (expected_type is int and isinstance(value, bool)):
        raise UsageError(
            f"Expected {flag} to be of type {expected_type.__name__}. "
            f"Received: {item.name}={value!r}"
        )
    if expected_type is float and not math.isfinite(value):
        raise UsageError(
            f"Expected {flag} to be a finite number. Received: {item.name}={value!r}"
        )
    if metadata.get("choices") is not None and value not in metadata["choices"]:
        choices = ", ".join(str(choice) for choice in metadata["choices"])
        raise UsageError(
            f"Expected {flag} to be one of: {choices}. Received: {item.name}={value!r}"
        )
    if minimum is not None and value < minimum:
        raise UsageError(f"Expected {flag} >= {minimum}. Received: {item.name}={value!r}")
    if maximum is not None and value > maximum:
        raise UsageError(f"Expected {flag} <= {maximum}. Received: {item.name}={value!r}")


def field_type(item):
    """The plain Python type of a config field (`tuple` for the comma lists)."""
    annotation = item.type
    if isinstance(annotation, str):
        annotation = {"str": str, "int": int, "float": float, "bool": bool, "tuple": tuple}[
            annotation
        ]
    return typing.get_origin(annotation) or annotation


def preset_folder():
    """The folder of the bundled presets: the installed `kerastrain.presets`, or `recipes/` in a source tree."""
    spec = importlib.util.find_spec("kerastrain.presets")
    if spec is not None and spec.submodule_search_locations:
        return pathlib.Path(list(spec.submodule_search_locations)[0])
    return pathlib.Path(__file__).resolve().parents[1] / "recipes"


def preset_names():
    """The names of the bundled presets (`sms_textcnn`, ...), sorted."""
    return sorted(path.stem for path in preset_folder().glob("*.toml"))


def describe_presets():
    """The bundled presets as `(name, recipe, summary)`: the summary is the file's first comment line."""
    rows = []
    for name in preset_names():
        path = preset_folder() / f"{name}.toml"
        text = path.read_text(encoding="utf-8")
        summary = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), "")
        recipe = tomllib.loads(text).get("recipe", "")
        rows.append((name, recipe, summary))
    return rows


def find_preset(name_or_path):
    """The path of a preset given as a file path or as the name of a bundled one.

    Args:
        name_or_path: a `.toml` file's path, or a bundled preset's name such
            as `"sms_textcnn"` (see `kerastrain presets`).

    Returns:
        A `pathlib.Path`.

    Raises:
        UsageError: if it is neither an existing file nor a bundled preset's
            name, or names a folder.
    """
    if not str(name_or_path).strip():
        raise UsageError("--config is empty. Pass a preset file (.toml) or a bundled preset's name.")
    path = pathlib.Path(name_or_path)
    if path.is_dir():
        raise UsageError(f"--config {name_or_path} is a folder. Pass a preset file (.toml) or a bundled preset's name.")
    if path.is_file():
        return path
    bundled = preset_folder() / f"{path.name.removesuffix('.toml')}.toml"
    if len(path.parts) == 1 and bundled.is_file():
        return bundled
    if len(path.parts) > 1 and path.parent.name == "recipes" and bundled.is_file():
        return bundled  # recipes/NAME.toml of the source tree, run from another folder
    raise UsageError(
        f"--config {name_or_path}: no such file or bundled preset. Bundled presets: "
        f"{', '.join(preset_names())} (kerastrain presets describes them)."
    )


def read_preset(path, config_class):
    """Reads a TOML preset into its field values and its search space.

    The preset's keys are the config's field names (`batch_size = 128`). An
    optional `recipe = "textcnn"` key says which recipe the preset is for, and an
    optional `[tune]` table declares a hyperparameter search space for `--tune`
    (checked by `kerastrain.search.search_space`, not here).

    Args:
        path: a `.toml` file, or a bundled preset's name (see `find_preset`).
        config_class: the recipe's config dataclass, to check keys against.

    Returns:
        A tuple `(values, tune)`: a dict of the preset's field values, and the
        `[tune]` table as a dict, or `None` when the preset has none.

    Raises:
        UsageError: if the file is missing or unreadable, is not UTF-8 or
            valid TOML, or has a key that is not a field of `config_class`.
    """
    file_path = find_preset(path)
    try:
        with open(file_path, "rb") as file:
            content = file.read()
        # Windows editors may start a UTF-8 file with a byte-order mark, which TOML does not allow.
        values = tomllib.loads(content.removeprefix(codecs.BOM_UTF8).decode("utf-8"))
    except PermissionError:
        raise UsageError(f"--config {path} cannot be read (permission denied). Make it readable.") from None
    except OSError as error:
        raise UsageError(f"--config {path} cannot be read ({error.strerror}). Pass a readable preset file.") from None
    except UnicodeDecodeError:
        raise UsageError(f"--config {path} is not UTF-8 text. Save the preset as UTF-8.") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"--config {path} is not valid TOML ({error}). Fix the file.") from None
    except ValueError:  # Python refuses to read an integer of more than 4,300 digits
        raise UsageError(f"--config {path} has a number too long to read. Fix the value in the file.") from None
    recipe = values.pop("recipe", None)
    expected_recipe = config_class.__name__.removesuffix("Config").lower()
    recipes = [known.__name__.removesuffix("Config").lower() for known in (TextCNNConfig, MLPConfig)]
    if recipe is not None and recipe not in recipes:
        raise UsageError(
            f"--config {path}: expected recipe to be one of {', '.join(recipes)}. Received: recipe={recipe!r}"
        )
    if recipe is not None and recipe != expected_recipe:
        raise UsageError(
            f"--config {path} is a preset for the {recipe} recipe, not {expected_recipe}. "
            f"Run it with kerastrain train {recipe}."
        )
    tune = values.pop("tune", None)
    if tune is not None and not isinstance(tune, dict):
        raise UsageError(
            f"--config {path}: tune must be a [tune] table of the search space, placed after "
            "the other keys. See the bundled preset sms_textcnn_tune."
        )
    names = {item.name for item in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UsageError(
            f"--config {path} has unknown key {unknown[0]!r}. Known keys are the flag names "
            "with underscores; see --help."
        )
    values = {name: tuple(value) if isinstance(value, list) else value for name, value in values.items()}
    if "output_dir" in values and isinstance(values["output_dir"], str) and not values["output_dir"].strip():
        raise UsageError(
            f"--config {path} sets output_dir to an empty path. Remove the key to let kerastrain name the "
            "run folder, or give a folder."
        )
    return values, tune


def check_preset_values(config_class, path, values, overridden=()):
    """Checks each value a preset gives against its field, naming the preset.

    Args:
        config_class: the recipe's config dataclass.
        path: the preset, as `--config` gave it.
        values: its field values, as `read_preset` returns them.
        overridden: the names of fields that flags or keywords set, whose
            preset values are never used (they are not checked). Defaults to
            `()`.

    Raises:
        UsageError: `--config PATH: ` and what `check_value` says.
    """
    fields = {item.name: item for item in dataclasses.fields(config_class)}
    for name, value in values.items():
        if name in overridden:
            continue
        try:
            check_value(fields[name], value)
        except UsageError as error:
            raise UsageError(f"--config {path}: {error}") from None


def read_checked_preset(path, config_class, overridden=()):
    """Reads a preset as `read_preset` does, then checks its values and its `[tune]` table.

    The `[tune]` table is checked whether or not the run searches it: a key
    written below the table by mistake belongs to it.

    Args:
        path: a `.toml` file, or a bundled preset's name.
        config_class: the recipe's config dataclass.
        overridden: the names of fields that flags or keywords set, whose
            preset values are not checked (see `check_preset_values`).
            Defaults to `()`.

    Returns:
        A tuple `(values, space)`: a dict of the preset's field values, and
        its `search_space.SearchSpace`, or `None` when it has no `[tune]` table.

    Raises:
        UsageError: as `read_preset`, `check_preset_values` and
            `search_space.parse_search_space` do.
    """
    values, tune = read_preset(path, config_class)
    check_preset_values(config_class, path, values, overridden)
    if tune is None:
        return values, None
    from kerastrain.search import search_space

    return values, search_space.parse_search_space(tune, config_class, str(path))


def load_preset(path, config_class):
    """Reads a TOML preset into a dict of field values, checked.

    A `[tune]` table in the preset is checked and left out: a plain run trains
    the preset's base values (see `read_checked_preset`).

    Args:
        path: path of the `.toml` file.
        config_class: the recipe's config dataclass, to check keys against.

    Returns:
        A dict of the preset's field values.

    Raises:
        UsageError: as `read_checked_preset` does.
    """
    return read_checked_preset(path, config_class)[0]


def resolve(config_class, preset_path=None, overrides=None):
    """Builds and checks a config from defaults, a preset and explicit overrides.

    Args:
        config_class: `TextCNNConfig` or `MLPConfig`.
        preset_path: optional path of a TOML preset. Defaults to `None`.
        overrides: dict of field values that win over the preset. Defaults to `None`.

    Returns:
        A validated instance of `config_class`.

    Example:

    ```python
    config = resolve(TextCNNConfig, "sms_textcnn", {"epochs": 2})
    ```
    """
    overrides = overrides or {}
    values = read_checked_preset(preset_path, config_class, overridden=overrides)[0] if preset_path else {}
    values.update(overrides)
    config = config_class(**values)
    config.validate()
    return config
