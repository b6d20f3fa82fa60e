"""Choosing and applying the float policy: float32, mixed_float16, mixed_bfloat16.

`--precision auto` decides by hardware where the answer is known and by
measurement where it is not:

- on GPUs whose compute capability is 7.0 or newer (tensor cores) it picks
  `mixed_float16`, without measuring; under a parameter-server strategy, where
  tf-keras refuses `mixed_float16`, `mixed_bfloat16` on GPUs of compute
  capability 8.0 or newer, float32 otherwise; on other GPUs, float32;
- on a CPU without bfloat16 units (AMX or AVX512-BF16) it picks float32,
  without measuring;
- on a CPU with bfloat16 units, for a model that keeps its accuracy in
  bfloat16, a preflight times a few of the model's real training steps in
  float32 and in `mixed_bfloat16`, alternating, and keeps `mixed_bfloat16` only
  when it trains at least `SPEEDUP_THRESHOLD` times as many examples per second.
  A model known to lose accuracy in bfloat16 gets float32 without measuring, as
  do jobs whose workers this process cannot measure (`multi_worker_mirrored`,
  and `parameter_server` on a TF_CONFIG cluster).

An explicit `float32`, `mixed_float16` or `mixed_bfloat16` is always kept.
"""

import dataclasses
import gc
import json
import time
import warnings

from kerastrain.backend import keras, tf

# The speed-up a reduced precision must reach in the preflight to be chosen.
# Below it the gain does not pay for the risk to accuracy.
SPEEDUP_THRESHOLD = 1.15
# Timed calls per policy in the preflight, alternating between the policies;
# the fastest call of each counts.
PREFLIGHT_ROUNDS = 3
AUTO = "auto"
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")

# Measured on a 2-core CPU machine without float16 units: a TextCNN that trains
# 2 epochs of 8k examples in about 8 s in float32 had not finished them after
# 300 s under mixed_float16 (TensorFlow emulates float16 arithmetic there).
CPU_FLOAT16_WARNING = (
    "mixed_float16 on a CPU is emulated and very slow (measured: 2 TextCNN epochs that "
    "take 8 s in float32 had not finished after 300 s). Use --precision auto, float32, "
    "or mixed_bfloat16 on a CPU with bfloat16 units."
)
_warned = set()


@dataclasses.dataclass
class PrecisionChoice:
    """The float policy a run trains under, and why.

    Attributes:
        requested: the `--precision` value: `"auto"` or a policy name.
        policy: the name of the `keras.mixed_precision.Policy` chosen.
        reason: one line for the console and the report, such as
            `"auto: float32 (mixed_bfloat16 trained 1.04x as fast, below 1.15x)"`.
        candidate: the reduced precision that `auto` considered, or `None`.
        examples_per_second: training examples per second of each policy the
            preflight timed (empty when nothing was measured).
        speedup: the candidate's examples per second over float32's, or `None`.
        threshold: the speed-up the candidate needed.
        preflight_seconds: the preflight's duration, building and compiling
            included, or `None` when there was none.
    """

    requested: str
    policy: str
    reason: str
    candidate: str = None
    examples_per_second: dict = dataclasses.field(default_factory=dict)
    speedup: float = None
    threshold: float = SPEEDUP_THRESHOLD
    preflight_seconds: float = None

    def to_dict(self):
        """The choice as a JSON-ready dict, for `config.json`'s `environment`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        names = {item.name for item in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in names})


def cpu_supports_bfloat16(cpuinfo_path="/proc/cpuinfo"):
    """Whether this CPU has bfloat16 matrix or vector units (AMX or AVX512-BF16).

    Reads the Linux CPU flags; elsewhere it answers `False`.
    """
    try:
        with open(cpuinfo_path) as file:
            for line in file:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def visible_gpus():
    """The GPUs TensorFlow sees."""
    return tf.config.list_physical_devices("GPU")


def gpu_compute_capabilities():
    """The compute capability of each visible GPU, like `(8, 0)`; `(0, 0)` where unknown."""
    capabilities = []
    for gpu in visible_gpus():
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        capabilities.append(tuple(capability) if capability else (0, 0))
    return capabilities


def gpu_runs_float16_fast():
    """Whether every visible GPU has tensor cores (compute capability 7.0 or newer)."""
    capabilities = gpu_compute_capabilities()
    return bool(capabilities) and all(capability >= (7, 0) for capability in capabilities)


def gpu_runs_bfloat16_fast():
    """Whether every visible GPU has bfloat16 tensor cores (compute capability 8.0 or newer)."""
    capabilities = gpu_compute_capabilities()
    return bool(capabilities) and all(capability >= (8, 0) for capability in capabilities)


def choose_precision(
    requested,
    strategy_name="default",
    allows_bfloat16=True,
    prepare_steps=None,
    *,
    local_cluster="",
    stored=None,
    run_examples=None,
    timer=time.perf_counter,
):
    """Decides the float policy of a run; for `"auto"` on a bfloat16 CPU, by measuring.

    The rule is the module's docstring's. The preflight calls
    `prepare_steps("float32")` and `prepare_steps("mixed_bfloat16")`, then times
    the functions they return `PREFLIGHT_ROUNDS` times each, alternating, and
    compares the fastest call of each. Measuring the candidate is skipped when
    the run is too short to repay it (see `run_examples`), and a candidate
    that fails to build or train leaves float32. It sets no global state: apply the
    result with `apply_choice`, after the measuring models are gone.

    Args:
        requested: `"auto"`, `"float32"`, `"mixed_float16"` or `"mixed_bfloat16"`.
        strategy_name: the `--strategy` name. Defaults to `"default"`.
        allows_bfloat16: whether the model keeps its accuracy in bfloat16; `False`
            keeps `auto` away from `mixed_bfloat16`. Defaults to `True`.
        prepare_steps: a function from a policy name to a function of no
            arguments that runs a few training steps under that policy (built,
            compiled and run once already) and returns how many examples they
            trained on; see `preflight_steps`. `None` measures nothing, and
            `auto` then keeps float32 where it would have measured. Defaults to
            `None`.
        local_cluster: the `--local-cluster` value: a parameter-server job on
            an in-process cluster runs on this machine, so it is measured.
            Defaults to `""`.
        stored: the `to_dict()` of the choice an interrupted run made in the
            same run folder; a resumed `auto` run keeps it. Defaults to `None`.
        run_examples: the training examples the whole run goes through
            (examples per epoch times epochs). When the run would take so
            little time in float32 that even a speed-up of `SPEEDUP_THRESHOLD`
            would not repay measuring the candidate (which takes about as long
            as preparing float32 took), the candidate is not measured. `None`
            always measures it. Defaults to `None`.
        timer: the clock of the preflight, in seconds. Defaults to
            `time.perf_counter`.

    Returns:
        A `PrecisionChoice`.

    Example:

    ```python
    choice = choose_precision("auto", "default", True, preflight_steps(...))
    apply_choice(choice)
    print(choice.reason)  # auto: float32 (this CPU has no bfloat16 units ...)
    ```
    """
    if requested != AUTO:
        if requested not in POLICIES:
            raise ValueError(f"Expected requested to be auto or one of {POLICIES}. Received: requested={requested!r}")
        if requested == "mixed_float16" and not visible_gpus() and requested not in _warned:
            _warned.add(requested)
            warnings.warn(CPU_FLOAT16_WARNING, stacklevel=2)
        return PrecisionChoice(requested, requested, f"{requested} (as requested)")
    if stored and stored.get("requested") == AUTO and stored.get("policy") in POLICIES:
        kept = PrecisionChoice.from_dict(stored)
        kept.reason = f"auto: {kept.policy} (the choice this run made when it started, kept on resume)"
        return kept

    def decided(policy, why, candidate=None):
        return PrecisionChoice(AUTO, policy, f"auto: {policy} ({why})", candidate)

    if visible_gpus():
        if not gpu_runs_float16_fast():
            return decided("float32", "a GPU without tensor cores, compute capability below 7.0")
        if strategy_name != "parameter_server":
            return decided("mixed_float16", "GPUs with tensor cores, compute capability 7.0 or newer", "mixed_float16")
        if not gpu_runs_bfloat16_fast():
            return decided(
                "float32",
                "tf-keras refuses mixed_float16 under parameter_server, and these GPUs have no "
                "bfloat16 tensor cores",
                "mixed_bfloat16",
            )
        if not allows_bfloat16:
            return decided(
                "float32",
                "tf-keras refuses mixed_float16 under parameter_server, and this model loses "
                "accuracy in bfloat16; --precision mixed_bfloat16 forces it",
                "mixed_bfloat16",
            )
        return decided(
            "mixed_bfloat16",
            "tf-keras refuses mixed_float16 under parameter_server; GPUs of compute capability "
            "8.0 or newer run bfloat16",
            "mixed_bfloat16",
        )

    candidate = "mixed_bfloat16"
    if not cpu_supports_bfloat16():
        return decided("float32", "this CPU has no bfloat16 units, neither AMX nor AVX512-BF16")
    if not allows_bfloat16:
        return decided(
            "float32", "this model loses accuracy in bfloat16 on CPUs; --precision mixed_bfloat16 forces it", candidate
        )
    if strategy_name == "multi_worker_mirrored" or (strategy_name == "parameter_server" and not local_cluster):
        return decided(
            "float32",
            f"the workers of a {strategy_name} job are not measured here; --precision mixed_bfloat16 forces it",
            candidate,
        )
    if prepare_steps is None:
        return decided("float32", "mixed_bfloat16 was not measured", candidate)
    return measure(candidate, prepare_steps, timer, run_examples)


def measure(candidate, prepare_steps, timer, run_examples=None):
    """The preflight of `choose_precision`: float32 against `candidate`, by examples per second."""
    started = timer()
    runners = {"float32": prepare_steps("float32")}
    prepare_seconds = timer() - started
    seconds = {"float32": [], candidate: []}
    examples = {}

    def time_call(policy):
        began = timer()
        examples[policy] = runners[policy]()
        seconds[policy].append(max(timer() - began, 1e-9))

    def speeds():
        return {policy: round(examples[policy] / min(times), 1) for policy, times in seconds.items() if times}

    def drop_models():
        # The measuring models go now, before the run builds its own.
        runners.clear()
        gc.collect()

    time_call("float32")
    if run_examples:
        run_seconds = run_examples * seconds["float32"][0] / examples["float32"]
        if run_seconds * (1 - 1 / SPEEDUP_THRESHOLD) < prepare_seconds:
            drop_models()
            reason = (
                f"auto: float32 (this run, about {run_seconds:.0f} s in float32, is too short to repay "
                f"measuring {candidate}, about {prepare_seconds:.0f} s)"
            )
            return PrecisionChoice(
                AUTO, "float32", reason, candidate, speeds(), None, SPEEDUP_THRESHOLD, round(timer() - started, 3)
            )
    try:
        runners[candidate] = prepare_steps(candidate)
    except Exception as error:  # a policy that cannot train this model is not a choice
        drop_models()
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        reason = f"auto: float32 ({candidate} failed to train in the preflight: {message})"
        return PrecisionChoice(
            AUTO, "float32", reason, candidate, speeds(), None, SPEEDUP_THRESHOLD, round(timer() - started, 3)
        )
    # Alternating, so that a change in the machine's load hits both policies.
    # The first float32 call is done; the rest go float32, candidate, candidate, float32, ...
    pairs = [("float32", candidate) if index % 2 == 0 else (candidate, "float32") for index in range(PREFLIGHT_ROUNDS)]
    for policy in [policy for pair in pairs for policy in pair][1:]:
        time_call(policy)
    drop_models()
    measured = speeds()
    speedup = (examples[candidate] / min(seconds[candidate])) / (examples["float32"] / min(seconds["float32"]))
    ratio = format_ratio(speedup)
    if speedup >= SPEEDUP_THRESHOLD:
        policy = candidate
        reason = f"auto: {candidate} (trained {ratio}x as fast as float32 in a preflight, at least {SPEEDUP_THRESHOLD}x)"
    else:
        policy = "float32"
        reason = f"auto: float32 ({candidate} trained {ratio}x as fast in a preflight, below {SPEEDUP_THRESHOLD}x)"
    return PrecisionChoice(
        AUTO, policy, reason, candidate, measured, round(speedup, 4), SPEEDUP_THRESHOLD, round(timer() - started, 3)
    )


def format_ratio(speedup):
    """`speedup` with 2 decimals, or 3 where 2 would print the threshold for a ratio below it."""
    text = f"{speedup:.2f}"
    if speedup < SPEEDUP_THRESHOLD and float(text) >= SPEEDUP_THRESHOLD:
        text = f"{speedup:.3f}"
    return text


def preflight_steps(build_model, config, preprocessor, num_classes, inputs, labels, jit_compile=False):
    """The `prepare_steps` of `choose_precision` for a recipe's model and data.

    Each policy gets its own model, built by `build_model` under that policy,
    with the run's gradient accumulation, optimizer, `steps_per_execution` and
    XLA setting, and trained on the first examples of the training split.
    One call of the returned runner is one call into the compiled training
    function: `config.steps_per_execution` steps of
    `config.batch_size * config.accumulate_steps` examples. Padded inputs are
    kept at their full length, the longest a batch can have.

    Call `choose_precision` with it outside `strategy.scope()`: the measuring
    models train on this process's devices and are dropped afterwards (no
    `keras.backend.clear_session()`, which would reset the state the run's
    strategy holds). Seed the run after the preflight, so that the measuring
    models' draws do not change the run's initial weights.

    Args:
        build_model: the recipe's `build_model(config, preprocessor, num_classes)`.
        config: the run's config.
        preprocessor: the fitted preprocessor that `build_model` sizes the model by.
        num_classes: the number of classes.
        inputs: model inputs of training examples (an array, or a dict from
            input name to array), as the training dataset holds them; a few
            batches are enough.
        labels: their class ids.
        jit_compile: whether the run compiles its training step with XLA.
            Defaults to `False`.

    Returns:
        A function from a policy name to a runner, as `choose_precision` expects.
    """
    from kerastrain import accumulation, optimizers, tf_data, training

    batch_size = config.batch_size * config.accumulate_steps
    examples_per_call = batch_size * config.steps_per_execution
    count = min(len(labels), examples_per_call)
    inputs = tf.nest.map_structure(lambda array: array[:count], inputs)
    labels = labels[:count]

    def prepare(policy_name):
        if tf.distribute.has_strategy():
            raise RuntimeError("Call choose_precision with preflight_steps outside strategy.scope().")
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(policy_name)
        try:
            model = build_model(config, preprocessor, num_classes)
            model = accumulation.with_gradient_accumulation(model, config.accumulate_steps)
            # The schedule's length (--decay-steps 0: the run's) does not change a step's time.
            optimizer = optimizers.optimizer_from_config(config, steps_per_epoch=1)
            training.compile_classifier(model, optimizer, config.steps_per_execution, jit_compile)
        finally:
            keras.mixed_precision.set_global_policy(previous)
        # The examples repeat, so every batch is whole and the step compiles once.
        dataset = tf_data.make_dataset(inputs, labels, batch_size, repeat=True, drop_remainder=True)
        iterator = iter(dataset)
        train_function = model.make_train_function()

        def run():
            logs = train_function(iterator)
            float(logs["loss"])  # waits for the steps to finish
            return examples_per_call

        run()  # traces and compiles
        return run

    return prepare


def choose_for_run(recipe, config, preprocessor, train_examples, train_labels, num_classes, jit_compile, config_path):
    """`choose_precision` for one run of a recipe, with its preflight on the run's own data.

    Call it after the strategy is built and before the run is seeded, outside
    `strategy.scope()`; then `apply_choice` the result.

    Args:
        recipe: the `kerastrain.recipe.Recipe`; its `reduced_precision_on_cpu`
            says whether `auto` may pick `mixed_bfloat16` for its model.
        config: the run's config.
        preprocessor: the fitted preprocessor, with `model_inputs`.
        train_examples: the training split's `kerastrain.data.Examples`.
        train_labels: their class ids.
        num_classes: the number of classes.
        jit_compile: whether the run compiles its training step with XLA.
        config_path: the run folder's `config.json`: a resumed run keeps the
            choice it recorded there.

    Returns:
        A `PrecisionChoice`.
    """
    count = config.batch_size * config.accumulate_steps * config.steps_per_execution
    measured = {}

    def prepare(policy_name):
        if not measured:  # only a preflight needs the model's inputs
            inputs = preprocessor.model_inputs(train_examples.inputs[:count])
            measured["prepare"] = preflight_steps(
                recipe.build_model, config, preprocessor, num_classes, inputs, train_labels[:count], jit_compile
            )
        return measured["prepare"](policy_name)

    return choose_precision(
        config.precision,
        config.strategy,
        recipe.reduced_precision_on_cpu,
        prepare,
        local_cluster=config.local_cluster,
        stored=stored_choice(config_path),
        run_examples=len(train_labels) * config.epochs,
    )


def stored_choice(config_path):
    """The `precision_choice` that a run folder's `config.json` recorded, or `None`.

    Args:
        config_path: the path of the run's `config.json`, which may not exist yet.

    Returns:
        A dict, as `PrecisionChoice.to_dict` wrote it, for `choose_precision`'s
        `stored`; `None` for a new run.
    """
    try:
        with open(config_path) as file:
            stored = json.load(file)
    except (OSError, ValueError):
        return None
    return stored.get("environment", {}).get("precision_choice") if isinstance(stored, dict) else None


def apply_choice(choice):
    """Sets `choice.policy` as Keras' global policy.

    Call it before building the model: layers take the global policy when
    they are created.

    Args:
        choice: a `PrecisionChoice`.

    Returns:
        The name of the policy now in force.
    """
    keras.mixed_precision.set_global_policy(choice.policy)
    return choice.policy


def resolve_precision(requested, strategy=None):
    """The policy name `choose_precision` picks for `requested` without a preflight.

    Args:
        requested: `"auto"`, `"float32"`, `"mixed_float16"` or `"mixed_bfloat16"`.
        strategy: the `--strategy` name. Defaults to `None`.

    Returns:
        The name of a `keras.mixed_precision.Policy`.
    """
    return choose_precision(requested, strategy or "default").policy


def apply_precision(requested, strategy=None):
    """Resolves `requested` without a preflight and sets it as Keras' global policy.

    For runs that cannot afford a preflight (each trial of a search); `auto`
    keeps float32 where it would have measured.

    Args:
        requested: as for `resolve_precision`.
        strategy: the `--strategy` name. Defaults to `None`.

    Returns:
        The name of the policy now in force.
    """
    return apply_choice(choose_precision(requested, strategy or "default"))
