"""Exit status 138 for a lost parameter server: which errors count, and the watch on its address."""

import socket
import time

import pytest

from conftest import SERVERS
from kerastrain.backend import tf
from kerastrain.distribute import cluster, faults
from kerastrain.errors import ClusterUnavailableError
from tensorflow.python.distribute.coordinator import cluster_coordinator

pytestmark = SERVERS  # its watches count on a free port staying closed

PS_ERROR = "Additional GRPC error information from remote target /job:ps/replica:0/task:0 while calling Enqueue"


@pytest.mark.parametrize(
    "error, lost",
    [
        (tf.errors.UnavailableError(None, None, "recvmsg:Connection reset by peer"), True),
        (cluster_coordinator.PSUnavailableError(tf.errors.UnavailableError(None, None, PS_ERROR)), True),
        (cluster_coordinator.ClosureAbortedError(tf.errors.UnavailableError(None, None, PS_ERROR)), True),
        (tf.errors.AbortedError(None, None, PS_ERROR), True),
        (tf.errors.AbortedError(None, None, "aborted on /job:worker/replica:0/task:1"), False),
        (tf.errors.InvalidArgumentError(None, None, f"unknown device. {PS_ERROR}"), True),
        (tf.errors.InvalidArgumentError(None, None, f"Incompatible shapes: [2] vs. [3]. {PS_ERROR}"), False),
        (ValueError("a bug"), False),
    ],
)
def test_the_errors_of_a_lost_parameter_server_are_told_apart(error, lost):
    assert faults.is_parameter_server_loss(error) is lost


def test_without_parameter_servers_the_block_runs_as_it_is():
    with pytest.raises(ValueError, match="a bug"):
        with faults.watch_parameter_servers(tf.distribute.get_strategy(), timeout_seconds=1):
            raise ValueError("a bug")


def closed_address():
    return f"localhost:{cluster.free_port()}"


def test_a_lost_parameter_server_becomes_a_retryable_error(monkeypatch):
    monkeypatch.setattr(faults, "parameter_server_tasks", lambda strategy: [])
    with pytest.raises(ClusterUnavailableError, match=r"parameter server was lost during training \(UnavailableError: gone\)") as raised:
        with faults.watch_parameter_servers(object(), timeout_seconds=1):
            raise tf.errors.UnavailableError(None, None, "gone\nmore detail")
    assert isinstance(raised.value.__cause__, tf.errors.UnavailableError)
    assert "\n" not in str(raised.value) and ClusterUnavailableError.EXIT_STATUS == 138
    with pytest.raises(KeyError):  # other errors pass through
        with faults.watch_parameter_servers(object(), timeout_seconds=1):
            raise KeyError("x")


def test_an_unreachable_parameter_server_is_given_up_after_the_timeout(capsys):
    address = closed_address()
    lost = []
    watch = faults.ParameterServerWatch([("ps", 0, address)], 0.4, on_lost=lost.append, poll_seconds=0.05).start()
    deadline = time.monotonic() + 30
    while not lost and time.monotonic() < deadline:
        time.sleep(0.05)
    watch.stop()
    (message,) = lost
    assert f"ps 0 ({address}) accepted no connection" in message and "status 138" in message
    assert f"ps 0 ({address}) accepts no connection; waiting up to --cluster-timeout 0.4 s" in capsys.readouterr().out


def test_a_reachable_parameter_server_is_left_alone_and_a_returning_one_named(capsys):
    with socket.socket() as server:
        server.bind(("localhost", 0))
        server.listen(16)
        up = f"localhost:{server.getsockname()[1]}"
        down = closed_address()
        lost = []
        watch = faults.ParameterServerWatch([("ps", 0, up)], 0.3, on_lost=lost.append, poll_seconds=0.05).start()
        time.sleep(1.0)
        watch.stop()
        assert lost == []
        # One that is down, then listens again.
        host, _, port = down.rpartition(":")
        watch = faults.ParameterServerWatch([("ps", 1, down)], 30, on_lost=lost.append, poll_seconds=0.05).start()
        time.sleep(0.3)
        with socket.socket() as returning:
            returning.bind((host, int(port)))
            returning.listen(16)
            time.sleep(0.5)
            watch.stop()
    assert lost == []
    assert f"ps 1 ({down}) is reachable again" in capsys.readouterr().out
