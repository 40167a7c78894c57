"""Tiles through Triton's system shared memory (same-host clients), against a real tritonserver."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fashiontag.client import ClientOptions, TagClient
from fashiontag.client.shm import SHM_PREFIX
from tests.conftest import ROOT


def _client_regions() -> list[Path]:
    return list(Path("/dev/shm").glob(f"{SHM_PREFIX}-*"))


def _server_regions(server) -> list:
    from tritonclient.grpc import InferenceServerClient

    with InferenceServerClient(server.grpc_url) as raw:
        status = raw.get_system_shared_memory_status(as_json=True)
    return list(status.get("regions", {}))


def test_a_stream_through_shared_memory_tags_like_grpc_and_cleans_up(server, garment_samples):
    images = [p.read_bytes() for p in garment_samples] + [b"not an image"]
    with TagClient(server.grpc_url, decode="client", timeout_s=60) as over_grpc:
        expected = list(over_grpc.tag_many(images, concurrency=4))
    with TagClient(server.grpc_url, decode="client", shared_memory=True,
                   timeout_s=60) as over_shm:
        got = list(over_shm.tag_many(images, concurrency=4))
    assert [r.ok for r in got] == [r.ok for r in expected] == [True] * len(garment_samples) + [
        False]
    np.testing.assert_allclose(np.stack([r.attributes.vector for r in got[:-1]]),
                               np.stack([r.attributes.vector for r in expected[:-1]]), atol=1e-6)
    assert "not a recognised image" in got[-1].error
    assert not _client_regions() and not _server_regions(server)


def test_a_consumer_that_stops_early_leaves_no_region_behind(server, garment_samples):
    images = [p.read_bytes() for p in garment_samples] * 3
    with TagClient(server.grpc_url, decode="client", shared_memory=True,
                   timeout_s=60) as client:
        stream = client.tag_stream(images, concurrency=16)
        first = [next(stream) for _ in range(2)]
        registered, mapped = _server_regions(server), _client_regions()
        assert len(registered) == 16, registered  # one region per request in flight
        assert len(mapped) == 16, mapped
        stream.close()  # with requests still in flight
    assert not _server_regions(server), _server_regions(server)
    assert all(r.ok for r in first), [r.error for r in first]
    assert not _client_regions(), _client_regions()
    assert server.is_running()


def test_shared_memory_needs_client_side_decoding():
    with pytest.raises(ValueError, match="decode='client'"):
        ClientOptions(shared_memory=True, decode="server")
    assert ClientOptions(shared_memory=True).decode == "client"  # the default decodes in the client


def test_the_tag_command_passes_tiles_through_shared_memory(server, tmp_path):
    out = tmp_path / "tags.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "fashiontag", "tag", str(ROOT / "samples" / "clothing"),
         "--url", server.grpc_url, "--shared-memory", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(list((ROOT / "samples" / "clothing").glob("*.jpg")))
    assert all("attributes" in r and r["attributes"] for r in records)
    assert not _client_regions()
