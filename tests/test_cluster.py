"""TF_CONFIG parsing and the --local-cluster flag."""

import json
import pathlib

import pytest

from kerastrain import cluster
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
