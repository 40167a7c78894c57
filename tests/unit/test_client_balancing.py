"""One client channel spreads its requests over every address its target names.

The Kubernetes deployment (docker/k8s) puts the replicas behind a headless Service, so
``dns:///fashiontag:8001`` resolves to every ready pod, and the client's gRPC round_robin policy
sends each request to the next one. Here two real gRPC servers speak the KServe protocol's
readiness calls on two loopback ports, named by one ``ipv4:`` target (the resolver a DNS answer
with two addresses feeds the same policy), and the real :class:`TagClient` asks them. The second
"replica" also starts only after the client is connected, as one the HPA adds would.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import grpc
import pytest

pytest.importorskip("tritonclient.grpc")
from concurrent import futures  # noqa: E402

from tritonclient.grpc import service_pb2, service_pb2_grpc  # noqa: E402

from fashiontag.cli.tag_commands import _urls  # noqa: E402
from fashiontag.client import TagClient  # noqa: E402
from fashiontag.client._common import ClientOptions  # noqa: E402
from fashiontag.serving.server import find_free_port  # noqa: E402


class _Replica(service_pb2_grpc.GRPCInferenceServiceServicer):
    """A server answering the readiness calls, counting the requests that reached it."""

    def __init__(self, name: str, hits: Counter, lock: threading.Lock) -> None:
        self.name, self.hits, self.lock = name, hits, lock

    def _hit(self) -> None:
        with self.lock:
            self.hits[self.name] += 1

    def ServerReady(self, request, context):
        self._hit()
        return service_pb2.ServerReadyResponse(ready=True)

    def ModelReady(self, request, context):
        self._hit()
        return service_pb2.ModelReadyResponse(ready=True)


@pytest.fixture
def replicas():
    """Start replicas by name on given ports; all stopped at teardown."""
    hits: Counter = Counter()
    lock = threading.Lock()
    servers = []

    def start(name: str, port: int) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            _Replica(name, hits, lock), server)
        assert server.add_insecure_port(f"127.0.0.1:{port}") == port
        server.start()
        servers.append(server)

    yield start, hits
    for server in servers:
        server.stop(grace=None)


def _ask_until(client: TagClient, hits: Counter, condition, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition(hits):
        assert time.monotonic() < deadline, f"requests reached only {dict(hits)}"
        assert client.is_ready()  # ServerReady + ModelReady, each balanced on its own


def test_a_balanced_target_is_one_url_with_round_robin():
    target = "ipv4:127.0.0.1:8001,127.0.0.2:8001"
    assert ClientOptions(url=target).urls == (target,)
    assert ClientOptions(url="dns:///fashiontag.ml.svc:8001").urls == \
        ("dns:///fashiontag.ml.svc:8001",)
    assert ClientOptions(url="a:1, b:2").urls == ("a:1", "b:2")  # several servers, as before
    assert ClientOptions(url=[target, "c:3"]).urls == (target, "c:3")
    assert _urls([target, "a:1,b:2"]) == (target, "a:1", "b:2")  # fashiontag tag --url
    args = dict(ClientOptions(url=target).client_kwargs()["channel_args"])
    assert args["grpc.lb_policy_name"] == "round_robin"
    with pytest.raises(ValueError, match="shared_memory"):
        ClientOptions(url=target, decode="client", shared_memory=True)


def test_one_client_spreads_requests_evenly_over_both_replicas(replicas):
    start, hits = replicas
    ports = find_free_port(), find_free_port()
    start("a", ports[0])
    start("b", ports[1])
    with TagClient(f"ipv4:127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}") as client:
        _ask_until(client, hits, lambda h: h["a"] and h["b"])  # both subchannels connected
        before = Counter(hits)
        for _ in range(20):
            assert client.is_ready()
        sent = {name: hits[name] - before[name] for name in "ab"}
    assert sum(sent.values()) == 40
    assert abs(sent["a"] - sent["b"]) <= 2, sent  # round robin: turn and turn about


def test_a_replica_started_later_gets_requests_from_the_connected_client(replicas):
    start, hits = replicas
    ports = find_free_port(), find_free_port()
    start("first", ports[0])
    with TagClient(f"ipv4:127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}") as client:
        for _ in range(5):
            assert client.is_ready()  # served by the one replica up
        assert hits["first"] == 10 and hits["added"] == 0
        start("added", ports[1])  # the HPA's new pod becomes ready
        _ask_until(client, hits, lambda h: h["added"] > 0)
        before = Counter(hits)
        for _ in range(10):
            assert client.is_ready()
    assert hits["added"] - before["added"] >= 8, dict(hits)  # about half of the last 20
