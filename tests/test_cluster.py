"""TF_CONFIG parsing and the --local-cluster flag."""

import collections
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from kerastrain.distribute import cluster
from kerastrain.errors import UsageError

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
        ('{"task": {"type": "worker", "index": 0}}', None, 'no "cluster"'),
        (tf_config({"trainer": ["a:1"]}), None, "unknown task type 'trainer'"),
        (tf_config({"worker": []}), None, "non-empty list"),
        (tf_config({"worker": ["nohost"]}), None, "expected \"host:port\""),
        (tf_config({"worker": ["a:99999"]}), None, "port from 1 to 65535"),
        (tf_config({"worker": ["a:1"], "chief": ["b:1", "c:1"]}), None, "at most one"),
        (json.dumps({"cluster": PS_CLUSTER}), None, 'no "task"'),
        (tf_config(task_type="master"), None, "task type 'master' is unknown"),
        (tf_config({"worker": ["a:1"]}, "ps", 0), None, "is not in its cluster"),
        (tf_config(index=2), None, "index 2 is out of range"),
        (tf_config(index=-1), None, "index -1 is out of range"),
        (tf_config(index="0"), None, "index '0' is out of range"),
        (tf_config({"worker": ["a:1"], "ps": ["b:1"]}, "worker", 0), "parameter_server", '"chief" is missing'),
        (tf_config(), "multi_worker_mirrored", "does not use"),
    ],
)
def test_malformed_tf_config_gets_one_line_naming_the_problem(text, strategy, expected):
    with pytest.raises(UsageError) as error:
        cluster.parse_tf_config(text, strategy)
    message = str(error.value)
    assert expected in message and "TF_CONFIG" in message and "\n" not in message


def test_tf_config_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cluster.tf_config_from_environment() is None
    monkeypatch.setenv("TF_CONFIG", tf_config())
    assert cluster.tf_config_from_environment().task_index == 1


@pytest.mark.parametrize("text, expected", [("workers=2,ps=1", (2, 1)), ("ps=3, workers=1", (1, 3))])
def test_local_cluster_shapes(text, expected):
    assert cluster.parse_local_cluster(text) == expected


@pytest.mark.parametrize("text", ["workers=2", "workers=0,ps=1", "workers=two,ps=1", "gpus=2,ps=1", ""])
def test_bad_local_cluster_shapes(text):
    with pytest.raises(UsageError, match="--local-cluster"):
        cluster.parse_local_cluster(text)


@pytest.mark.parametrize(
    "path", sorted((pathlib.Path(__file__).parents[1] / "cluster" / "tf_config_examples").glob("*.json")), ids=str
)
def test_shipped_tf_config_examples_are_valid(path):
    strategy = "parameter_server" if path.name.startswith("parameter_server") else "multi_worker_mirrored"
    task = cluster.parse_tf_config(path.read_text(), strategy)
    assert path.stem.endswith(f"{task.task_type}{task.task_index}") or path.stem.endswith(task.task_type)


def test_an_evaluator_task_is_told_apart_and_left_out_of_the_training_cluster(monkeypatch):
    with_evaluator = dict(PS_CLUSTER, evaluator=["10.0.0.9:2222"])
    monkeypatch.setenv("TF_CONFIG", tf_config(with_evaluator, "evaluator", 0))
    assert cluster.is_evaluator_task("parameter_server")
    assert not cluster.is_evaluator_task("default")  # TF_CONFIG only matters to multi-worker strategies
    assert not cluster.writes_outputs("parameter_server")
    monkeypatch.setenv("TF_CONFIG", tf_config(with_evaluator, "chief", 0))
    assert not cluster.is_evaluator_task("parameter_server")
    assert cluster.job_has_evaluator("parameter_server")
    assert not cluster.job_has_evaluator("parameter_server", local_cluster="workers=2,ps=1")
    resolver = cluster.training_cluster_resolver(cluster.tf_config_from_environment("parameter_server"))
    assert resolver.cluster_spec().as_dict() == PS_CLUSTER
    assert (resolver.task_type, resolver.task_id, resolver.rpc_layer) == ("chief", 0, "grpc")
    monkeypatch.setenv("TF_CONFIG", tf_config(PS_CLUSTER, "chief", 0))
    assert not cluster.job_has_evaluator("parameter_server")
    monkeypatch.setenv("TF_CONFIG", tf_config({"worker": ["a:1", "b:2"], "evaluator": ["c:3"]}, "evaluator", 0))
    assert cluster.is_evaluator_task("multi_worker_mirrored")


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

    # The chief checkpoints every epoch for the evaluator, which it finds in its TF_CONFIG.
    chief_config = json.dumps({"cluster": spec, "task": {"type": "chief", "index": 0}})
    monkeypatch.setenv("TF_CONFIG", chief_config)
    assert cluster.job_has_evaluator("parameter_server") and cluster.writes_outputs("parameter_server")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": spec, "task": {"type": "evaluator", "index": 0}}))
    assert cluster.is_evaluator_task("parameter_server")
    # Both mount one ReadWriteMany claim over the run folder.
    output_dir = arguments[arguments.index("--output-dir") + 1]
    claim = claim_mounted_at(tasks["chief", 0], output_dir)
    assert claim is not None and claim_mounted_at(tasks["evaluator", 0], output_dir) == claim
    assert "ReadWriteMany" in objects["PersistentVolumeClaim"][claim]["spec"]["accessModes"]
    assert "ports" not in tasks["evaluator", 0]["spec"]["containers"][0]  # it serves nothing
