"""One client channel spreads its requests over every address its target names, and finds
replicas added after it connected.

The Kubernetes deployment (docker/k8s) puts the replicas behind a headless Service, so
``dns:///fashiontag:8001`` resolves to every ready pod, and the client's gRPC round_robin policy
sends each request to the next one; Triton's max connection age makes connected clients
re-resolve the name. Here real gRPC servers speak the KServe protocol's readiness calls on
loopback addresses (127.0.0.1, 127.0.0.2), a real DNS server (UDP, on a free port) answers for
the Service's name as the cluster DNS does, and the real :class:`TagClient` asks them.
"""

from __future__ import annotations

import socket
import struct
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


class _Dns:
    """A DNS server answering A queries for one name with ``addresses``, as the cluster DNS
    answers for a headless Service with its ready pods; other names do not exist."""

    def __init__(self, name: str) -> None:
        self.name, self.addresses = name, []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:  # closed
                return
            end, labels = 12, []
            while query[end]:
                labels.append(query[end + 1:end + 1 + query[end]].decode())
                end += 1 + query[end]
            qtype = struct.unpack(">H", query[end + 1:end + 3])[0]
            known = ".".join(labels).lower() == self.name
            answers = list(self.addresses) if known and qtype == 1 else []  # A records only
            header = struct.pack(">HHHHHH", struct.unpack(">H", query[:2])[0],
                                 0x8180 | (0 if known else 3), 1, len(answers), 0, 0)
            records = b"".join(b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 0, 4)
                               + socket.inet_aton(a) for a in answers)
            self.sock.sendto(header + query[12:end + 5] + records, peer)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def replicas():
    """Start replicas by name on given addresses; all stopped at teardown."""
    hits: Counter = Counter()
    lock = threading.Lock()
    servers = []

    def start(name: str, port: int, host: str = "127.0.0.1", options=()) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=list(options))
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            _Replica(name, hits, lock), server)
        assert server.add_insecure_port(f"{host}:{port}") == port
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


def test_a_replica_added_to_the_service_gets_requests_from_a_connected_client(replicas):
    """The HPA adds a pod: its address joins the Service's DNS answer once it is ready. The
    first pod's max connection age (Triton's --grpc-max-connection-age, shortened here) closes
    the client's connection; the client reconnects, re-resolves the name and spreads over both,
    without a failed request."""
    start, hits = replicas
    port = find_free_port()
    age = [("grpc.max_connection_age_ms", 300), ("grpc.max_connection_age_grace_ms", 5000)]
    dns = _Dns("fashiontag.ml.svc.cluster.local")
    try:
        dns.addresses = ["127.0.0.1"]
        start("first", port, "127.0.0.1", age)
        target = f"dns://127.0.0.1:{dns.port}/fashiontag.ml.svc.cluster.local:{port}"
        with TagClient(target) as client:
            for _ in range(5):
                assert client.is_ready()  # served by the one pod there is
            assert hits["first"] == 10 and hits["added"] == 0
            start("added", port, "127.0.0.2", age)  # the new pod is ready...
            dns.addresses = ["127.0.0.1", "127.0.0.2"]  # ...and in the Service's answer
            _ask_until(client, hits, lambda h: h["added"] > 0)
            before = Counter(hits)
            for _ in range(10):
                assert client.is_ready()
        assert hits["added"] - before["added"] >= 6, dict(hits)  # both serve now
    finally:
        dns.close()
