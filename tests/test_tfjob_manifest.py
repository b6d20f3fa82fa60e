"""The Kubeflow TFJob manifest: the fields the operator needs, the TF_CONFIG it writes, the commands it runs.

The TF_CONFIG of each replica is made here by the rules of the Kubeflow
training operator (kubeflow/training-operator, release-1.9,
`pkg/controller.v1/tensorflow/tensorflow.go` and `util.go`): every replica
type lowercased, each replica at `<job>-<type>-<index>.<namespace>.svc:<port>`,
the port being the container port named `tfjob-port` of the container named
`tensorflow` (2222 without one), and `"environment": "cloud"`.
"""

import json
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, environment_without_tf_config
from kerastrain import cli
from kerastrain.config import TextCNNConfig
from kerastrain.distribute import cluster

yaml = pytest.importorskip("yaml", reason="reading the manifest needs PyYAML (pip install pyyaml)")

MANIFEST = REPO / "cluster" / "kubernetes" / "tfjob.yaml"
NAMESPACE = "ml"
# From the operator's API (pkg/apis/kubeflow.org/v1).
DEFAULT_CONTAINER, DEFAULT_PORT_NAME, DEFAULT_PORT = "tensorflow", "tfjob-port", 2222
REPLICA_TYPES = ("PS", "Worker", "Chief", "Master", "Evaluator")
RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")


def manifest_objects():
    """The manifest's objects, as `{kind: {name: object}}`."""
    objects = {}
    for document in yaml.safe_load_all(MANIFEST.read_text()):
        if document:
            objects.setdefault(document["kind"], {})[document["metadata"]["name"]] = document
    return objects


def tfjob():
    (job,) = manifest_objects()["TFJob"].values()
    return job


def tensorflow_container(replica_spec):
    return next(c for c in replica_spec["template"]["spec"]["containers"] if c["name"] == DEFAULT_CONTAINER)


def operator_port(replica_spec):
    """The operator's `GetPortFromTFJob`."""
    for port in tensorflow_container(replica_spec).get("ports", []):
        if port.get("name") == DEFAULT_PORT_NAME:
            return port["containerPort"]
    return DEFAULT_PORT


def operator_tf_config(job, replica_type, index):
    """The TF_CONFIG the operator sets in replica `index` of `replica_type` (its `genTFConfigJSONStr`)."""
    cluster_spec = {}
    for name, spec in job["spec"]["tfReplicaSpecs"].items():
        kind = name.lower()
        port = operator_port(spec)
        cluster_spec[kind] = [
            f"{job['metadata']['name']}-{kind}-{replica}.{NAMESPACE}.svc:{port}" for replica in range(spec.get("replicas", 1))
        ]
    return json.dumps(
        {"cluster": cluster_spec, "task": {"type": replica_type.lower(), "index": index}, "environment": "cloud"}
    )


def replicas(job):
    """Every `(replica_type, index, replica_spec)` of the job."""
    return [
        (name, index, spec)
        for name, spec in job["spec"]["tfReplicaSpecs"].items()
        for index in range(spec.get("replicas", 1))
    ]


def test_the_tfjob_has_what_the_operator_requires():
    job = tfjob()
    assert job["apiVersion"] == "kubeflow.org/v1" and job["kind"] == "TFJob"
    # The operator's webhook: a DNS-1035 name, replica specs, a `tensorflow` container with an image.
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", job["metadata"]["name"]) and len(job["metadata"]["name"]) <= 63
    specs = job["spec"]["tfReplicaSpecs"]
    assert set(specs) <= set(REPLICA_TYPES)
    assert {name: spec.get("replicas", 1) for name, spec in specs.items()} == {"Chief": 1, "Worker": 2, "PS": 1, "Evaluator": 1}
    assert sum(name in ("Chief", "Master") for name in specs) == 1
    assert not job["spec"].get("enableDynamicWorker", False)  # its sparse TF_CONFIG cannot run
    for name, spec in specs.items():
        containers = spec["template"]["spec"]["containers"]
        assert all(container.get("image") for container in containers), name
        assert tensorflow_container(spec), name
        assert spec["restartPolicy"] in RESTART_POLICIES, name
    # Retries by exit code: 138 and signals (128 and up) restart a replica, usage errors (2) fail the job.
    assert {spec["restartPolicy"] for spec in specs.values()} == {"ExitCode"}
    # Parameter servers and workers serve until stopped: the operator stops them when the chief succeeds.
    assert job["spec"]["runPolicy"]["cleanPodPolicy"] == "Running"
    for name in ("Chief", "Worker", "PS"):
        assert operator_port(specs[name]) == 2222 and any(
            port.get("name") == DEFAULT_PORT_NAME for port in tensorflow_container(specs[name])["ports"]
        ), name
    # Only the job's own pods reach the unauthenticated gRPC ports.
    (policy,) = manifest_objects()["NetworkPolicy"].values()
    selector = {"training.kubeflow.org/job-name": job["metadata"]["name"]}
    assert policy["spec"]["podSelector"]["matchLabels"] == selector
    assert policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == selector


EXPECTED_PLAN = {"chief": "will: train as chief", "worker": "will: serve", "ps": "will: serve", "evaluator": "will: evaluate"}


@pytest.mark.parametrize("replica_type, index", [(name, index) for name, index, _ in replicas(tfjob())])
def test_the_tf_config_the_operator_writes_passes_cluster_check(replica_type, index):
    tf_config = operator_tf_config(tfjob(), replica_type, index)
    result = subprocess.run(
        [sys.executable, "-m", "kerastrain.distribute.check", "--strategy", "parameter_server"],
        capture_output=True, text=True, timeout=60, cwd=REPO, env=environment_without_tf_config(TF_CONFIG=tf_config),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    kind = replica_type.lower()
    assert f"this task: {kind} {index} at trainer-{kind}-{index}.{NAMESPACE}.svc:2222" in result.stdout
    assert "training cluster: 1 chief, 2 workers, 1 ps" in result.stdout
    assert "  evaluator 0:" not in result.stdout  # listed, but not among the tasks the chief connects to
    assert EXPECTED_PLAN[kind] in result.stdout


# Stand-ins for the image's `python` and `kerastrain`: they record the TF_CONFIG and
# the arguments they were started with.
RECORDING_PROGRAM = """#!/bin/sh
printf '%s' "$TF_CONFIG" > "$RECORD.tf_config"
printf '%s\\n' "$(basename "$0")" "$@" > "$RECORD.arguments"
"""


def run_container_command(container, tf_config, folder, record_name):
    """Runs the container's command and arguments as the pod would, with the operator's TF_CONFIG.

    Returns:
        A tuple `(tf_config, argv)`: what the started program saw.
    """
    command = [*container.get("command", []), *container.get("args", [])]
    environment = {variable["name"]: variable["value"] for variable in container.get("env", [])}
    record = folder / record_name
    environment.update(TF_CONFIG=tf_config, PATH=f"{folder}:/usr/bin:/bin", RECORD=str(record))
    program = shutil.which(command[0], path=environment["PATH"])
    assert program is not None and program.startswith(str(folder)), f"{command[0]} is not the image's python or kerastrain"
    result = subprocess.run([program, *command[1:]], env=environment, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return record.with_suffix(".tf_config").read_text(), record.with_suffix(".arguments").read_text().split("\n")[:-1]


def training_arguments(argv):
    """The recipe's flags in a recorded command line, whichever way the recipe is started."""
    if argv[:3] == ["python", "-m", "kerastrain.recipes.textcnn"]:
        return argv[3:]
    if argv[:3] == ["kerastrain", "train", "textcnn"]:
        return argv[3:]
    raise AssertionError(f"not a TextCNN training command: {argv}")


def claim_mounted_at(pod_spec, container, path):
    """The PersistentVolumeClaim that the container mounts over `path`, or None."""
    claims = {
        volume["name"]: volume["persistentVolumeClaim"]["claimName"]
        for volume in pod_spec.get("volumes", [])
        if "persistentVolumeClaim" in volume
    }
    for mount in container.get("volumeMounts", []):
        if path == mount["mountPath"] or path.startswith(mount["mountPath"].rstrip("/") + "/"):
            return claims.get(mount["name"])
    return None


def test_every_replica_runs_the_same_training_command_with_its_own_task(tmp_path, monkeypatch):
    for program in ("python", "kerastrain"):
        (tmp_path / program).write_text(RECORDING_PROGRAM)
        (tmp_path / program).chmod(0o755)
    job = tfjob()

    commands, tasks = set(), {}
    for replica_type, index, spec in replicas(job):
        container = tensorflow_container(spec)
        tf_config = operator_tf_config(job, replica_type, index)
        seen_tf_config, argv = run_container_command(container, tf_config, tmp_path, f"{replica_type}-{index}")
        assert seen_tf_config == tf_config, "the command changed TF_CONFIG"
        arguments = training_arguments(argv)
        commands.add(tuple(arguments))
        # The flags and the preset they name parse as the recipe's.
        config = cli.parse_command(TextCNNConfig, arguments, prog="test", description="").config
        assert config.strategy == "parameter_server" and not config.local_cluster
        monkeypatch.setenv("TF_CONFIG", tf_config)
        task = cluster.check_cluster_settings(config)
        assert (task.task_type, task.task_index) == (replica_type.lower(), index)
        tasks[task.task_type, task.task_index] = (spec, container, config)
    (arguments,) = commands  # every replica runs the same command
    # The chief and the evaluator mount one ReadWriteMany claim over the run folder.
    chief_spec, chief_container, config = tasks["chief", 0]
    evaluator_spec, evaluator_container, _ = tasks["evaluator", 0]
    claim = claim_mounted_at(chief_spec["template"]["spec"], chief_container, config.output_dir)
    assert claim is not None
    assert claim_mounted_at(evaluator_spec["template"]["spec"], evaluator_container, config.output_dir) == claim
    assert "ReadWriteMany" in manifest_objects()["PersistentVolumeClaim"][claim]["spec"]["accessModes"]
