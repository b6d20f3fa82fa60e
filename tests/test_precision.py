"""The float policy: the CPU and GPU checks, `--precision auto`'s decision rule and its preflight.

The decision tests stub the hardware checks and the preflight's clock, so they
hold on every machine; one test runs a real preflight on tiny models and
checks only what holds everywhere.
"""

import gc
import html
import json
import warnings
import weakref

import numpy as np
import pytest

from kerastrain import precision, report, run_folder
from kerastrain.backend import keras, tf
from kerastrain.config import MLPConfig, TextCNNConfig, resolve


# Every test starts, and leaves, in float32 (the conftest fixture).
pytestmark = pytest.mark.usefixtures("float32_policy")


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(precision, "visible_gpus", lambda: [])
    monkeypatch.setattr(precision, "_warned", set())


@pytest.fixture
def bfloat16_cpu(cpu_only, monkeypatch):
    monkeypatch.setattr(precision, "cpu_supports_bfloat16", lambda: True)


def gpus(monkeypatch, *capabilities):
    monkeypatch.setattr(precision, "visible_gpus", lambda: [f"GPU:{index}" for index in range(len(capabilities))])
    monkeypatch.setattr(precision, "gpu_compute_capabilities", lambda: list(capabilities))


class FakePreflight:
    """A stubbed preflight on a fake clock: each policy's call takes the seconds given for it.

    Records the policies prepared and the order of the timed calls.
    """

    def __init__(self, seconds, examples=640, prepare_seconds=2.0):
        self.seconds = seconds
        self.examples = examples
        self.prepare_seconds = prepare_seconds
        self.now = 100.0
        self.prepared = []
        self.calls = []

    def timer(self):
        return self.now

    def prepare(self, policy):
        self.prepared.append(policy)
        self.now += self.prepare_seconds

        def run():
            self.calls.append(policy)
            self.now += self.seconds[policy]
            return self.examples

        return run


def refuse_to_measure(policy):
    raise AssertionError(f"the preflight ran ({policy}) where no measurement was expected")


# The CPU's bfloat16 units.


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("fpu vme sse avx2 amx_bf16 amx_tile", True),
        ("fpu vme avx512f avx512_bf16", True),
        ("fpu vme sse avx2 avx512f", False),
        ("", False),
    ],
)
def test_cpu_supports_bfloat16_reads_the_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert precision.cpu_supports_bfloat16(str(cpuinfo)) is expected


def test_cpu_supports_bfloat16_needs_a_whole_flag(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: amx_bf16x avx512_bf16_extra\n")
    assert precision.cpu_supports_bfloat16(str(cpuinfo)) is False


def test_cpu_supports_bfloat16_without_a_cpuinfo_file(tmp_path):
    assert precision.cpu_supports_bfloat16(str(tmp_path / "missing")) is False


def test_cpu_supports_bfloat16_without_a_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")
    assert precision.cpu_supports_bfloat16(str(cpuinfo)) is False


# Explicit policies.


@pytest.mark.parametrize("name", ["float32", "mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("strategy", ["default", "parameter_server"])
def test_an_explicit_policy_is_kept_without_measuring(bfloat16_cpu, name, strategy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mixed_float16 on a CPU warns; see below
        choice = precision.choose_precision(name, strategy, False, refuse_to_measure)
    assert choice.policy == name and choice.requested == name
    assert choice.reason == f"{name} (as requested)"
    assert choice.examples_per_second == {} and choice.preflight_seconds is None


def test_an_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="float16"):
        precision.choose_precision("float16")


def test_mixed_float16_on_a_cpu_warns_once_with_the_measured_numbers(cpu_only):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        precision.choose_precision("mixed_float16")
        precision.choose_precision("mixed_float16")
    messages = [str(item.message) for item in record if "mixed_float16" in str(item.message)]
    assert len(messages) == 1
    assert "8 s" in messages[0] and "300 s" in messages[0] and "mixed_bfloat16" in messages[0]


@pytest.mark.parametrize("name", ["float32", "mixed_bfloat16"])
def test_other_explicit_policies_do_not_warn(cpu_only, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.choose_precision(name).policy == name


# auto on CPUs.


def test_auto_on_a_cpu_without_bfloat16_units_is_float32_without_measuring(cpu_only, monkeypatch):
    monkeypatch.setattr(precision, "cpu_supports_bfloat16", lambda: False)
    choice = precision.choose_precision("auto", "default", True, refuse_to_measure)
    assert choice.policy == "float32" and choice.candidate is None
    assert choice.reason.startswith("auto: float32 (") and "no bfloat16 units" in choice.reason


def test_auto_keeps_bfloat16_when_the_preflight_finds_it_clearly_faster(bfloat16_cpu):
    preflight = FakePreflight({"float32": 0.5, "mixed_bfloat16": 0.4})  # 1.25x
    choice = precision.choose_precision("auto", "default", True, preflight.prepare, timer=preflight.timer)
    assert choice.policy == "mixed_bfloat16" and choice.candidate == "mixed_bfloat16"
    assert choice.examples_per_second == {"float32": 640 / 0.5, "mixed_bfloat16": 640 / 0.4}
    assert choice.speedup == pytest.approx(1.25)
    assert choice.threshold == precision.SPEEDUP_THRESHOLD
    assert "1.25x" in choice.reason and f"{precision.SPEEDUP_THRESHOLD}x" in choice.reason
    assert choice.preflight_seconds == pytest.approx(2 * 2.0 + 3 * 0.5 + 3 * 0.4)


def test_auto_keeps_float32_when_bfloat16_is_not_clearly_faster(bfloat16_cpu):
    preflight = FakePreflight({"float32": 0.52, "mixed_bfloat16": 0.5})  # 1.04x
    choice = precision.choose_precision("auto", "default", True, preflight.prepare, timer=preflight.timer)
    assert choice.policy == "float32" and choice.candidate == "mixed_bfloat16"
    assert choice.speedup == pytest.approx(1.04)
    assert choice.reason == "auto: float32 (mixed_bfloat16 trained 1.04x as fast in a preflight, below 1.15x)"
    assert set(choice.examples_per_second) == {"float32", "mixed_bfloat16"}


@pytest.mark.parametrize("ratio, expected", [(precision.SPEEDUP_THRESHOLD, "mixed_bfloat16"), (1.149, "float32")])
def test_the_threshold_itself_is_enough(bfloat16_cpu, ratio, expected):
    preflight = FakePreflight({"float32": ratio, "mixed_bfloat16": 1.0})
    choice = precision.choose_precision("auto", "default", True, preflight.prepare, timer=preflight.timer)
    assert choice.policy == expected
    if expected == "float32":
        assert "1.149x" in choice.reason  # not rounded up to the threshold it missed


def test_the_preflight_alternates_and_counts_the_fastest_call(bfloat16_cpu):
    seconds = iter([0.5, 0.9, 0.4, 0.5, 0.6, 0.45])  # in call order

    class Noisy(FakePreflight):
        def prepare(self, policy):
            self.prepared.append(policy)

            def run():
                self.calls.append(policy)
                self.now += next(seconds)
                return self.examples

            return run

    preflight = Noisy({})
    choice = precision.choose_precision("auto", "default", True, preflight.prepare, timer=preflight.timer)
    assert preflight.prepared == ["float32", "mixed_bfloat16"]
    float32, bfloat16 = "float32", "mixed_bfloat16"
    assert preflight.calls == [float32, bfloat16, bfloat16, float32, float32, bfloat16]
    # Fastest calls: float32 0.5 (calls 1, 4, 5: 0.5, 0.5, 0.6), bfloat16 0.4 (0.9, 0.4, 0.45).
    assert choice.examples_per_second == {float32: 640 / 0.5, bfloat16: 640 / 0.4}


def test_a_model_that_loses_accuracy_in_bfloat16_stays_float32_without_measuring(bfloat16_cpu):
    choice = precision.choose_precision("auto", "default", False, refuse_to_measure)
    assert choice.policy == "float32"
    assert "loses accuracy in bfloat16" in choice.reason and "--precision mixed_bfloat16" in choice.reason


def test_the_recipes_say_whether_their_model_keeps_its_accuracy_in_bfloat16():
    from kerastrain.recipes import mlp, textcnn

    assert textcnn.RECIPE.reduced_precision_on_cpu is True
    assert mlp.RECIPE.reduced_precision_on_cpu is False


@pytest.mark.parametrize("strategy", ["multi_worker_mirrored", "parameter_server"])
def test_jobs_whose_workers_are_not_measured_here_stay_float32(bfloat16_cpu, strategy):
    choice = precision.choose_precision("auto", strategy, True, refuse_to_measure)
    assert choice.policy == "float32" and f"workers of a {strategy} job" in choice.reason


def test_a_parameter_server_job_on_an_in_process_cluster_is_measured(bfloat16_cpu):
    preflight = FakePreflight({"float32": 0.5, "mixed_bfloat16": 0.25})
    choice = precision.choose_precision(
        "auto", "parameter_server", True, preflight.prepare, local_cluster="workers=2,ps=1", timer=preflight.timer
    )
    assert choice.policy == "mixed_bfloat16" and preflight.prepared == ["float32", "mixed_bfloat16"]


@pytest.mark.parametrize("strategy", ["default", "one_device", "mirrored"])
def test_one_machine_strategies_are_measured(bfloat16_cpu, strategy):
    preflight = FakePreflight({"float32": 0.5, "mixed_bfloat16": 0.25})
    assert precision.choose_precision("auto", strategy, True, preflight.prepare, timer=preflight.timer).policy == (
        "mixed_bfloat16"
    )


def test_without_a_preflight_auto_keeps_float32(bfloat16_cpu):
    choice = precision.choose_precision("auto", "default", True, None)
    assert choice.policy == "float32" and "not measured" in choice.reason
    assert precision.resolve_precision("auto") == "float32"


def test_a_run_too_short_to_repay_the_preflight_does_not_measure_the_candidate(bfloat16_cpu):
    # float32: 640 examples in 0.5 s, 1280 examples/s; preparing it took 2 s.
    preflight = FakePreflight({"float32": 0.5, "mixed_bfloat16": 0.1})
    short = 1280 * 10  # 10 s in float32: even 1.15x would save 1.3 s, less than 2 s
    choice = precision.choose_precision(
        "auto", "default", True, preflight.prepare, run_examples=short, timer=preflight.timer
    )
    assert choice.policy == "float32" and preflight.prepared == ["float32"]
    assert "too short" in choice.reason and choice.examples_per_second == {"float32": 1280.0}

    preflight = FakePreflight({"float32": 0.5, "mixed_bfloat16": 0.1})
    long = 1280 * 60  # 60 s in float32: 1.15x would save 7.8 s, more than 2 s
    choice = precision.choose_precision(
        "auto", "default", True, preflight.prepare, run_examples=long, timer=preflight.timer
    )
    assert choice.policy == "mixed_bfloat16" and preflight.prepared == ["float32", "mixed_bfloat16"]


def test_a_candidate_that_fails_to_train_leaves_float32(bfloat16_cpu):
    def prepare(policy):
        if policy == "mixed_bfloat16":
            raise tf.errors.InvalidArgumentError(None, None, "No registered kernel for bfloat16\nmore detail")
        return lambda: 64

    choice = precision.choose_precision("auto", "default", True, prepare)
    assert choice.policy == "float32"
    assert choice.reason.endswith("failed to train in the preflight: No registered kernel for bfloat16)")


def test_the_measuring_models_are_gone_when_the_choice_is_made(bfloat16_cpu):
    runners = []

    class Runner:
        def __call__(self):
            return 64

    def prepare(policy):
        runner = Runner()
        runners.append(weakref.ref(runner))
        return runner

    precision.choose_precision("auto", "default", True, prepare)
    gc.collect()
    assert len(runners) == 2 and all(reference() is None for reference in runners)


def test_a_resumed_run_keeps_the_choice_it_started_with(bfloat16_cpu, tmp_path):
    preflight = FakePreflight({"float32": 0.5, "mixed_bfloat16": 0.25})
    first = precision.choose_precision("auto", "default", True, preflight.prepare, timer=preflight.timer)
    config_path = tmp_path / run_folder.CONFIG
    config_path.write_text(json.dumps({"config": {}, "environment": {"precision_choice": first.to_dict()}}))

    resumed = precision.choose_precision(
        "auto", "default", True, refuse_to_measure, stored=precision.stored_choice(config_path)
    )
    assert resumed.policy == first.policy == "mixed_bfloat16"
    assert resumed.examples_per_second == first.examples_per_second
    assert "kept on resume" in resumed.reason
    # An explicit request is what it says, whatever the folder holds.
    assert precision.choose_precision("float32", stored=first.to_dict()).policy == "float32"


def test_stored_choice_of_a_new_or_older_run_is_none(tmp_path):
    assert precision.stored_choice(tmp_path / "missing.json") is None
    older = tmp_path / "config.json"
    older.write_text(json.dumps({"config": {}, "environment": {"precision": "float32"}}))
    assert precision.stored_choice(older) is None


# auto on GPUs: decided by compute capability, never measured.


@pytest.mark.parametrize("strategy", ["default", "mirrored", "multi_worker_mirrored"])
def test_auto_on_tensor_core_gpus_is_mixed_float16(monkeypatch, strategy):
    gpus(monkeypatch, (7, 0), (8, 6))
    choice = precision.choose_precision("auto", strategy, False, refuse_to_measure)
    assert choice.policy == "mixed_float16" and "tensor cores" in choice.reason


def test_auto_on_a_gpu_without_tensor_cores_is_float32(monkeypatch):
    gpus(monkeypatch, (8, 0), (6, 1))  # one old GPU is enough to rule float16 out
    assert precision.choose_precision("auto", "default", True, refuse_to_measure).policy == "float32"


@pytest.mark.parametrize(
    "capability, allows_bfloat16, expected",
    [((8, 0), True, "mixed_bfloat16"), ((8, 0), False, "float32"), ((7, 5), True, "float32"), ((6, 0), True, "float32")],
)
def test_auto_on_gpus_under_parameter_servers_avoids_float16(monkeypatch, capability, allows_bfloat16, expected):
    gpus(monkeypatch, capability)
    choice = precision.choose_precision("auto", "parameter_server", allows_bfloat16, refuse_to_measure)
    assert choice.policy == expected


def test_gpu_capability_checks_need_every_gpu(monkeypatch):
    monkeypatch.setattr(precision, "gpu_compute_capabilities", lambda: [(9, 0), (7, 5)])
    assert precision.gpu_runs_float16_fast() and not precision.gpu_runs_bfloat16_fast()
    monkeypatch.setattr(precision, "gpu_compute_capabilities", lambda: [])
    assert not precision.gpu_runs_float16_fast() and not precision.gpu_runs_bfloat16_fast()


# Applying a choice.


def test_apply_choice_sets_the_global_policy():
    choice = precision.PrecisionChoice("mixed_bfloat16", "mixed_bfloat16", "mixed_bfloat16 (as requested)")
    assert precision.apply_choice(choice) == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert precision.apply_precision("float32") == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_a_choice_round_trips_through_json(bfloat16_cpu):
    preflight = FakePreflight({"float32": 0.5, "mixed_bfloat16": 0.25})
    choice = precision.choose_precision("auto", "default", True, preflight.prepare, timer=preflight.timer)
    assert precision.PrecisionChoice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice


# A real preflight, on tiny models and the real clock.


def tiny_mlp_parts():
    from kerastrain.recipes import mlp

    config = resolve(MLPConfig, overrides={"hidden_units": (16,), "batch_size": 16, "steps_per_execution": 2,
                                           "output_dir": "unused"})  # fmt: skip
    scaler = type("Scaler", (), {"num_features": 8})()
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(100, 8)).astype("float32")
    labels = rng.integers(0, 3, size=100)
    return mlp.build_model, config, scaler, inputs, labels


@pytest.mark.slow
@pytest.mark.parametrize("jit_compile", [False, True])
def test_a_real_preflight_returns_a_valid_policy_and_positive_timings(bfloat16_cpu, jit_compile):
    build_model, config, scaler, inputs, labels = tiny_mlp_parts()
    prepare = precision.preflight_steps(build_model, config, scaler, 3, inputs, labels, jit_compile)
    choice = precision.choose_precision("auto", "default", True, prepare)
    assert choice.policy in ("float32", "mixed_bfloat16")
    assert set(choice.examples_per_second) == {"float32", "mixed_bfloat16"}
    assert all(speed > 0 for speed in choice.examples_per_second.values())
    assert choice.speedup > 0 and choice.preflight_seconds > 0
    # The preflight leaves the global policy as it found it; the caller applies the choice.
    assert keras.mixed_precision.global_policy().name == "float32"


def test_the_preflight_builds_each_policy_and_refuses_to_run_in_a_strategy_scope():
    build_model, config, scaler, inputs, labels = tiny_mlp_parts()
    built = []

    def recording_build(*arguments):
        model = build_model(*arguments)
        built.append({layer.dtype_policy.name for layer in model.layers if isinstance(layer, keras.layers.Dense)})
        return model

    prepare = precision.preflight_steps(recording_build, config, scaler, 3, inputs, labels)
    run = prepare("mixed_bfloat16")
    assert built == [{"mixed_bfloat16"}]
    assert run() == config.batch_size * config.steps_per_execution
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        with pytest.raises(RuntimeError, match="outside strategy.scope"):
            prepare("float32")


# The recipes record the choice and say it on their first line; the report shows it.


@pytest.mark.slow
def test_a_textcnn_run_records_its_preflight_and_the_report_shows_it(bfloat16_cpu, sms_sample_csv, tmp_path, capsys):
    from kerastrain.recipes import textcnn

    config = resolve(TextCNNConfig, overrides={
        "data": str(sms_sample_csv), "epochs": 1, "embedding_dim": 8, "filters": 4, "ngram_features": 500,
        "jit_compile": False, "verbose": 0, "output_dir": str(tmp_path / "run"),
    })  # fmt: skip
    textcnn.main(config)
    first_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("kerastrain:"))
    stored = json.loads((tmp_path / "run" / run_folder.CONFIG).read_text())["environment"]
    choice = stored["precision_choice"]
    assert choice["requested"] == "auto" and choice["policy"] == stored["precision"]
    assert choice["reason"] in first_line and first_line.count("auto: ") == 1
    assert "float32" in choice["examples_per_second"] and choice["preflight_seconds"] > 0
    page = (tmp_path / "run" / run_folder.REPORT).read_text()
    assert '<h3 id="precision">Precision</h3>' in page and html.escape(choice["reason"]) in page


def write_finished_run(path, environment):
    """The files of a finished two-epoch run that the report reads."""
    path.mkdir()
    (path / run_folder.CONFIG).write_text(json.dumps({"config": {"data": "sms"}, "environment": environment}))
    (path / run_folder.METRICS).write_text(json.dumps({"test": {"accuracy": 0.9}, "epochs": 2}))
    (path / run_folder.HISTORY).write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss,epoch_seconds,examples_per_second\n"
        "0,0.8,0.5,0.8,0.5,2.0,500\n1,0.9,0.3,0.85,0.4,1.0,1000\n"
    )
    return path


def test_the_report_shows_the_preflight_timings(bfloat16_cpu, tmp_path):
    preflight = FakePreflight({"float32": 0.5, "mixed_bfloat16": 0.4})
    choice = precision.choose_precision("auto", "default", True, preflight.prepare, timer=preflight.timer)
    run_dir = write_finished_run(tmp_path / "run", {"precision": choice.policy, "precision_choice": choice.to_dict()})
    page = open(report.write_report(run_dir)).read()
    part = page[page.index('<h3 id="precision">') : page.index("</section>", page.index('<h3 id="precision">'))]
    assert "auto: mixed_bfloat16 (trained 1.25x as fast as float32" in part
    assert "1,280" in part and "1,600" in part and "1.25x" in part
    assert "at 1.15x float32&#x27;s examples per second or more" in part


def test_the_report_of_a_run_without_a_recorded_choice_has_no_precision_part(tmp_path):
    page = open(report.write_report(write_finished_run(tmp_path / "run", {"precision": "float32"}))).read()
    assert 'id="precision"' not in page and '<section id="throughput">' in page
