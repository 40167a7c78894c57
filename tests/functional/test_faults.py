"""Faults the server must survive: a python-backend stub killed mid-service."""

from __future__ import annotations

import os
import signal
import time

import pytest

from fashiontag.client import ClientError, TagClient
from fashiontag.protocol import ATTRIBUTES_MODEL, PREPROCESS_MODEL
from fashiontag.serving.server import TritonServer
from fashiontag.serving.watchdog import stub_processes
from tests.functional.conftest import free_port_config


def _tag_with_retries(client: TagClient, image: bytes, deadline_s: float = 90.0):
    """What a catalog client does: retry transient failures until a deadline."""
    deadline = time.monotonic() + deadline_s
    failures = 0
    while True:
        try:
            return client.tag(image), failures
        except ClientError:
            failures += 1
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _kill_stub(server: TritonServer, model: str) -> int:
    stubs = {pid: m for pid, m in stub_processes(server.process.pid).items() if m == model}
    assert stubs, f"no stub found for {model}"
    pid = next(iter(stubs))
    os.kill(pid, signal.SIGKILL)
    return pid


@pytest.mark.parametrize("model_control", ["none", "explicit"])
@pytest.mark.parametrize("model", [ATTRIBUTES_MODEL, PREPROCESS_MODEL])
def test_killed_stub_is_healed_and_retrying_clients_complete(repository, sample_photos, model,
                                                             model_control):
    image = sample_photos[0].read_bytes()
    with TritonServer(free_port_config(repository, model_control=model_control)) as server, \
            TagClient(server.grpc_url, timeout_s=30) as client:
        expected = client.tag(image).vector
        _kill_stub(server, model)
        results = [_tag_with_retries(client, image) for _ in range(5)]
        assert all(abs(r.vector - expected).max() < 1e-5 for r, _ in results)
        if model_control == "none":
            assert server.restarts == 1  # no model control: the launcher restarts the server
        else:
            assert server.restarts == 0  # model control on: only the broken model is reloaded
        assert len(stub_processes(server.process.pid)) >= 3
