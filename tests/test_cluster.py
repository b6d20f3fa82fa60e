"""TF_CONFIG parsing and the --local-cluster flag."""

import collections
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO, SERVERS, environment_without_tf_config
from kerastrain.distribute import cluster
from kerastrain.errors import ClusterUnavailableError, UsageError

pytestmark = SERVERS  # its waits listen on ports, or count on a free one staying closed

PS_CLUSTER = {
    "chief": ["10.0.0.1:2222"],
    "worker": ["10.0.0.2:2222", "10.0.0.3:2222"],
    "ps": ["10.0.0.4:2222"],
}


def tf_config(cluster_value=PS_CLUSTER, task_type="worker", index=1):
    return json.dumps({"cluster": cluster_value, "task": {"type": task_type, "index": index}})


def test_a_valid_tf_config_names_the_task_and_its_address():
    task = cluster.parse_tf_config(tf_config(), strategy="parameter_server")
    assert (task.task_type, task.task_index, task.address) == ("worker", 1, "10.0.0.3:2222")
    assert not task.is_chief
    assert cluster.parse_tf_config(tf_config(task_type="chief", index=0)).is_chief


def test_without_a_chief_worker_0_is_the_chief():
    workers = {"worker": ["a:1", "b:2"]}
    assert cluster.parse_tf_config(tf_config(workers, "worker", 0), "multi_worker_mirrored").is_chief
    assert not cluster.parse_tf_config(tf_config(workers, "worker", 1)).is_chief


@pytest.mark.parametrize(
    "text, strategy, expected",
    [
        ("{not json", None, "not valid JSON"),
        ("[1, 2]", None, "not a JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', None, 'no "cluster"'),
        (tf_config({"trainer": ["a:1"]}), None, "unknown task type 'trainer'"),
        (tf_config({"worker": []}), None, "non-empty list"),
        (tf_config({"worker": ["nohost"]}), None, "expected \"host:port\""),
        (tf_config({"worker": ["a:99999"]}), None, "port from 1 to 65535"),
        (tf_config({"worker": ["a:1"], "chief": ["b:1", "c:1"]}), None, "at most one"),
        (json.dumps({"cluster": PS_CLUSTER}), None, 'no "task"'),
        (tf_config(task_type="trainer"), None, "task type 'trainer' is unknown"),
        (tf_config({"worker": ["a:1"]}, "ps", 0), None, "is not in its cluster"),
        (tf_config(index=2), None, "index 2 is out of range"),
        (tf_config(index="2"), None, "index 2 is out of range"),
        (tf_config(index=-1), None, "index -1 is out of range"),
        (tf_config(index="one"), None, "index 'one' is not a whole number"),
        (tf_config(index=True), None, "index True is not a whole number"),
        (tf_config({"worker": ["a:1"], "ps": ["b:1"]}, "worker", 0), "parameter_server", '"chief" is missing'),
        (tf_config(), "multi_worker_mirrored", "does not use"),
    ],
)
def test_malformed_tf_config_gets_one_line_naming_the_problem(text, strategy, expected):
    with pytest.raises(UsageError) as error:
        cluster.parse_tf_config(text, strategy)
    message = str(error.value)
    assert expected in message and "TF_CONFIG" in message and "\n" not in message


# What the Kubeflow training operator (release-1.9) writes for the replica
# "worker 1" of a TFJob named trainer in the namespace ml, with an evaluator.
TFJOB_CLUSTER = {
    "chief": ["trainer-chief-0.ml.svc:2222"],
    "worker": ["trainer-worker-0.ml.svc:2222", "trainer-worker-1.ml.svc:2222"],
    "ps": ["trainer-ps-0.ml.svc:2222"],
    "evaluator": ["trainer-evaluator-0.ml.svc:2222"],
}


@pytest.mark.parametrize(
    "value, strategy, task",
    [
        # Kubeflow TFJob: every replica type, the evaluator included, and "environment".
        *[
            (
                {"cluster": TFJOB_CLUSTER, "task": {"type": task_type, "index": index}, "environment": "cloud"},
                "parameter_server",
                (task_type, index),
            )
            for task_type, addresses in TFJOB_CLUSTER.items()
            for index in range(len(addresses))
        ],
        # TensorFlow's tutorial: the evaluator outside the others' cluster; its own
        # cluster lists only itself, or is left out.
        ({"cluster": PS_CLUSTER, "task": {"type": "chief", "index": 0}}, "parameter_server", ("chief", 0)),
        (
            {"cluster": {"evaluator": ["10.0.0.9:2222"]}, "task": {"type": "evaluator", "index": 0}},
            "parameter_server",
            ("evaluator", 0),
        ),
        ({"task": {"type": "evaluator", "index": 0}}, "parameter_server", ("evaluator", 0)),
        ({"cluster": {}, "task": {"type": "evaluator"}}, "multi_worker_mirrored", ("evaluator", 0)),
        # Volcano's TensorFlow plugin: the Kubeflow shape without "environment".
        ({"cluster": PS_CLUSTER, "task": {"type": "ps", "index": 0}}, "parameter_server", ("ps", 0)),
        # Ray Train: workers only, under multi-worker mirrored.
        ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, "multi_worker_mirrored", ("worker", 1)),
        # A template that writes the index as a string.
        ({"cluster": PS_CLUSTER, "task": {"type": "worker", "index": "1"}}, "parameter_server", ("worker", 1)),
    ],
)
def test_every_shape_tensorflow_accepts_is_accepted(value, strategy, task):
    parsed = cluster.parse_tf_config(json.dumps(value), strategy)
    assert (parsed.task_type, parsed.task_index) == task
    assert "evaluator" not in parsed.training_cluster
    assert isinstance(parsed.task_index, int)


@pytest.mark.parametrize(
    "value, expected",
    [
        # SageMaker's parameter-server layout, and a TFJob with a Master replica.
        (
            {"cluster": {"master": ["algo-1:2222"], "ps": ["algo-1:2223"], "worker": ["algo-2:2222"]},
             "task": {"type": "worker", "index": 0}},
            'names "master"',
        ),
        ({"cluster": {"master": ["m:2222"], "worker": ["w:2222"]}, "task": {"type": "master", "index": 0}}, '"master"'),
        # TFJob's enableDynamicWorker: true, as its chief and a worker get it.
        ({"cluster": {"worker": {}, "ps": []}, "task": {"type": "chief", "index": 0}}, "enableDynamicWorker: false"),
        (
            {"cluster": {"worker": {"1": "trainer-worker-1.ml.svc:2222"}, "ps": ["trainer-ps-0.ml.svc:2222"]},
             "task": {"type": "worker", "index": 1}},
            "enableDynamicWorker: false",
        ),
        # A parameter-server cluster without parameter servers.
        ({"cluster": {"chief": ["c:1"], "worker": ["w:1"]}, "task": {"type": "chief", "index": 0}}, 'no "ps" tasks'),
        ({"cluster": PS_CLUSTER, "task": {"type": "worker", "index": 5}}, "index 5 is out of range"),
    ],
)  # fmt: skip
def test_shapes_tensorflow_cannot_run_are_refused_with_the_fix(value, expected):
    with pytest.raises(UsageError) as error:
        cluster.parse_tf_config(json.dumps(value), "parameter_server")
    message = str(error.value)
    assert expected in message and "\n" not in message
    assert any(fix in message for fix in ("Call that task", "Set enableDynamicWorker", "Add the parameter servers", "indexed from 0"))


def test_tf_config_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cluster.tf_config_from_environment() is None
    monkeypatch.setenv("TF_CONFIG", tf_config())
    assert cluster.tf_config_from_environment().task_index == 1


@pytest.mark.parametrize(
    "text, expected", [("workers=2,ps=1", (2, 1)), ("ps=3, workers=1", (1, 3)), ("workers=32,ps=32", (32, 32))]
)
def test_local_cluster_shapes(text, expected):
    assert cluster.parse_local_cluster(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "workers=2", "workers=0,ps=1", "workers=two,ps=1", "gpus=2,ps=1", "",
        "workers=2,workers=3,ps=1", "workers=100000,ps=1", "workers=2,ps=33",
    ],
)  # fmt: skip
def test_bad_local_cluster_shapes(text):
    with pytest.raises(UsageError, match="--local-cluster"):
        cluster.parse_local_cluster(text)


@pytest.mark.parametrize(
    "path", sorted((pathlib.Path(__file__).parents[1] / "cluster" / "tf_config_examples").glob("*.json")), ids=str
)
def test_shipped_tf_config_examples_are_valid(path):
    strategy = "multi_worker_mirrored" if path.name.startswith("multi_worker") else "parameter_server"
    task = cluster.parse_tf_config(path.read_text(), strategy)
    assert path.stem.endswith(f"{task.task_type}{task.task_index}") or path.stem.endswith(task.task_type)


def test_an_evaluator_task_is_told_apart_and_left_out_of_the_training_cluster(monkeypatch):
    with_evaluator = dict(PS_CLUSTER, evaluator=["10.0.0.9:2222"])
    monkeypatch.setenv("TF_CONFIG", tf_config(with_evaluator, "evaluator", 0))
    assert cluster.is_evaluator_task("parameter_server")
    assert not cluster.is_evaluator_task("default")  # TF_CONFIG only matters to multi-worker strategies
    assert not cluster.writes_outputs("parameter_server")
    assert not cluster.keeps_epoch_checkpoints("parameter_server")
    monkeypatch.setenv("TF_CONFIG", tf_config(with_evaluator, "chief", 0))
    assert not cluster.is_evaluator_task("parameter_server")
    assert cluster.keeps_epoch_checkpoints("parameter_server")
    assert not cluster.keeps_epoch_checkpoints("parameter_server", local_cluster="workers=2,ps=1")
    assert not cluster.keeps_epoch_checkpoints("default")
    resolver = cluster.training_cluster_resolver(cluster.tf_config_from_environment("parameter_server"))
    assert resolver.cluster_spec().as_dict() == PS_CLUSTER
    assert (resolver.task_type, resolver.task_id, resolver.rpc_layer) == ("chief", 0, "grpc")
    # An evaluator outside the chief's cluster: the chief keeps its epoch checkpoints all the same.
    monkeypatch.setenv("TF_CONFIG", tf_config(PS_CLUSTER, "chief", 0))
    assert cluster.keeps_epoch_checkpoints("parameter_server")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"evaluator": ["10.0.0.9:2222"]}, "task": {"type": "evaluator", "index": 0}}))
    assert cluster.is_evaluator_task("parameter_server") and not cluster.writes_outputs("parameter_server")
    monkeypatch.setenv("TF_CONFIG", tf_config({"worker": ["a:1", "b:2"], "evaluator": ["c:3"]}, "evaluator", 0))
    assert cluster.is_evaluator_task("multi_worker_mirrored")


def test_a_string_index_reaches_the_resolver_as_a_number(monkeypatch):
    task = cluster.parse_tf_config(tf_config(index="1"), "parameter_server")
    resolver = cluster.training_cluster_resolver(task)
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)
    assert task.address == "10.0.0.3:2222"


class Config:
    """The fields of a `TrainingConfig` that `check_cluster_settings` reads."""

    def __init__(self, strategy, local_cluster=""):
        self.strategy, self.local_cluster = strategy, local_cluster


@pytest.mark.parametrize(
    "strategy, local_cluster, tf_config_value, expected",
    [
        ("parameter_server", "workers=two", None, "--local-cluster"),
        ("parameter_server", "", None, "needs a cluster"),
        ("multi_worker_mirrored", "", None, "needs TF_CONFIG"),
        ("parameter_server", "", tf_config({"chief": ["c:1"], "worker": ["w:1"]}, "chief", 0), 'no "ps" tasks'),
    ],
)
def test_cluster_settings_are_checked_without_tensorflow(monkeypatch, strategy, local_cluster, tf_config_value, expected):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if tf_config_value:
        monkeypatch.setenv("TF_CONFIG", tf_config_value)
    with pytest.raises(UsageError, match=expected):
        cluster.check_cluster_settings(Config(strategy, local_cluster))


def test_cluster_settings_that_are_fine_give_the_task(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", tf_config())
    assert cluster.check_cluster_settings(Config("parameter_server")).task_index == 1
    assert cluster.check_cluster_settings(Config("parameter_server", "workers=2,ps=1")) is None
    assert cluster.check_cluster_settings(Config("default")) is None  # TF_CONFIG does not matter to it


def test_checking_a_bad_cluster_imports_no_tensorflow():
    script = (
        "import sys\n"
        "from kerastrain import config\n"
        "from kerastrain.distribute import cluster\n"
        "from kerastrain.errors import UsageError\n"
        "try:\n"
        "    cluster.check_cluster_settings(config.TextCNNConfig(strategy='parameter_server', local_cluster='ps=1'))\n"
        "except UsageError as error:\n"
        "    print('tensorflow' in sys.modules, error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO, env=environment_without_tf_config()
    )
    assert result.stdout.startswith("False Expected --local-cluster"), result.stderr


# The Kubernetes manifest: each pod's command is run by a real shell, with the
# ConfigMap's cluster.json where the pod mounts it and a stand-in `python` that
# records the TF_CONFIG and arguments it was started with.

MANIFEST = pathlib.Path(__file__).parents[1] / "cluster" / "kubernetes" / "parameter_server_job.yaml"
RECORDING_PYTHON = """#!/bin/sh
printf '%s' "$TF_CONFIG" > "$RECORD.tf_config"
printf '%s\\n' "$@" > "$RECORD.arguments"
"""


def manifest_objects():
    """The manifest's objects, as `{kind: {name: object}}`."""
    yaml = pytest.importorskip("yaml", reason="reading the Kubernetes manifest needs PyYAML (pip install pyyaml)")
    objects = collections.defaultdict(dict)
    for document in yaml.safe_load_all(MANIFEST.read_text()):
        if document:
            objects[document["kind"]][document["metadata"]["name"]] = document
    return objects


def run_pod_command(pod, cluster_file, folder):
    """The TF_CONFIG and the arguments that the pod's command starts `python` with."""
    (container,) = pod["spec"]["containers"]
    command = [*container["command"], *container["args"]]
    assert command[:2] == ["/bin/sh", "-c"] and len(command) == 3, command
    mount = next(mount["mountPath"] for mount in container["volumeMounts"] if mount["name"] == "cluster")
    script = command[2].replace(f"{mount}/cluster.json", str(cluster_file))
    record = folder / pod["metadata"]["name"]
    environment = {"PATH": f"{folder}:{os.environ.get('PATH', '/usr/bin:/bin')}", "RECORD": str(record)}
    result = subprocess.run([shutil.which("sh"), "-c", script], env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return (record.with_suffix(".tf_config").read_text(), record.with_suffix(".arguments").read_text().split())


def claim_mounted_at(pod, path):
    """The name of the PersistentVolumeClaim that the pod mounts over `path`, or None."""
    (container,) = pod["spec"]["containers"]
    claims = {
        volume["name"]: volume["persistentVolumeClaim"]["claimName"]
        for volume in pod["spec"]["volumes"]
        if "persistentVolumeClaim" in volume
    }
    for mount in container["volumeMounts"]:
        if path == mount["mountPath"] or path.startswith(mount["mountPath"].rstrip("/") + "/"):
            return claims.get(mount["name"])
    return None


@pytest.mark.skipif(shutil.which("sh") is None, reason="no `sh` on this machine: the test runs each pod's shell command as the pod would")
def test_kubernetes_pods_share_one_cluster_and_the_evaluator_reads_the_chiefs_run_folder(tmp_path, monkeypatch):
    objects = manifest_objects()
    cluster_json = objects["ConfigMap"]["trainer-cluster"]["data"]["cluster.json"]
    cluster_file = tmp_path / "cluster.json"
    cluster_file.write_text(cluster_json)
    (tmp_path / "python").write_text(RECORDING_PYTHON)
    (tmp_path / "python").chmod(0o755)
    spec = json.loads(cluster_json)

    tasks, commands = {}, set()
    for name, pod in objects["Pod"].items():
        tf_config, arguments = run_pod_command(pod, cluster_file, tmp_path)
        task = cluster.parse_tf_config(tf_config, "parameter_server")
        assert task.cluster == spec, name
        assert (task.task_type, task.task_index) not in tasks, f"{name} repeats task {task.task_type} {task.task_index}"
        tasks[task.task_type, task.task_index] = pod
        commands.add(tuple(arguments))
        # Each task's address names a Service that selects this pod.
        service = objects["Service"][task.address.rpartition(":")[0]]
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items(), name
    assert set(tasks) == {(task_type, index) for task_type, addresses in spec.items() for index in range(len(addresses))}
    assert "evaluator" in spec
    (arguments,) = commands  # every task runs the same command
    assert arguments[:2] == ("-m", "kerastrain.recipes.textcnn")

    # The chief checkpoints every epoch for the evaluator.
    chief_config = json.dumps({"cluster": spec, "task": {"type": "chief", "index": 0}})
    monkeypatch.setenv("TF_CONFIG", chief_config)
    assert cluster.keeps_epoch_checkpoints("parameter_server") and cluster.writes_outputs("parameter_server")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": spec, "task": {"type": "evaluator", "index": 0}}))
    assert cluster.is_evaluator_task("parameter_server")
    # Both mount one ReadWriteMany claim over the run folder.
    output_dir = arguments[arguments.index("--output-dir") + 1]
    claim = claim_mounted_at(tasks["chief", 0], output_dir)
    assert claim is not None and claim_mounted_at(tasks["evaluator", 0], output_dir) == claim
    assert "ReadWriteMany" in objects["PersistentVolumeClaim"][claim]["spec"]["accessModes"]
    assert "ports" not in tasks["evaluator", 0]["spec"]["containers"][0]  # it serves nothing


# The chief's wait for its workers and parameter servers, and the gRPC keepalive.


def listening_socket():
    server = socket.socket()
    server.bind(("localhost", 0))
    server.listen(16)
    return server, f"localhost:{server.getsockname()[1]}"


def test_the_chief_names_the_tasks_it_waits_for_and_gives_up_with_a_retryable_error(capsys):
    server, up = listening_socket()
    with server:
        down = f"localhost:{cluster.free_port()}"
        task = cluster.TaskConfig({"chief": ["localhost:1"], "worker": [up, down], "ps": [down]}, "chief", 0)
        with pytest.raises(ClusterUnavailableError) as error:
            cluster.wait_for_training_cluster(task, timeout_seconds=0.6, report_seconds=0.2, poll_seconds=0.05)
    message = str(error.value)
    assert f"worker 1 ({down}), ps 0 ({down}) accepted no connection within --cluster-timeout 0.6 s" in message
    assert "worker 0" not in message and "\n" not in message
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 2
    assert all(f"kerastrain: chief: waiting for worker 1 ({down}), ps 0 ({down}) to accept connections" in line for line in lines)


def test_the_chief_goes_on_once_every_task_listens(capsys):
    port = cluster.free_port()
    task = cluster.TaskConfig({"chief": ["localhost:1"], "worker": [f"localhost:{port}"], "ps": [f"localhost:{port}"]}, "chief", 0)
    server = socket.socket()

    def listen_later():
        time.sleep(0.3)
        server.bind(("localhost", port))
        server.listen(16)

    thread = threading.Thread(target=listen_later)
    thread.start()
    try:
        cluster.wait_for_training_cluster(task, timeout_seconds=30, poll_seconds=0.05)
    finally:
        thread.join()
        server.close()
    assert "waiting for worker 0" in capsys.readouterr().out


def test_grpc_keepalive_is_added_to_the_users_options(monkeypatch):
    monkeypatch.setenv("TF_GRPC_DEFAULT_OPTIONS", "grpc.max_reconnect_backoff_ms=1000,grpc.keepalive_time_ms=5000")
    cluster.use_grpc_keepalive(20)
    assert os.environ["TF_GRPC_DEFAULT_OPTIONS"] == (
        "grpc.max_reconnect_backoff_ms=1000,grpc.keepalive_time_ms=5000,grpc.keepalive_timeout_ms=20000"
    )
    monkeypatch.delenv("TF_GRPC_DEFAULT_OPTIONS")
    cluster.use_grpc_keepalive(600)
    assert os.environ["TF_GRPC_DEFAULT_OPTIONS"] == "grpc.keepalive_time_ms=10000,grpc.keepalive_timeout_ms=600000"
