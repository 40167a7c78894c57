"""The Ray Data engine on a local Ray instance started by the test, calling two real servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.catalog import make_catalog
from fashiontag.serving.server import TritonServer
from fashiontag.tagging.runner import TagSettings
from fashiontag.tagging.sink import JsonlSink
from fashiontag.tagging.sources import open_sources
from tests.functional.conftest import free_port_config
from tests.functional.test_serving import _stats

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def second_server(repository):
    with TritonServer(free_port_config(repository)) as srv:
        yield srv


def test_ray_workers_spread_a_catalog_over_two_servers_and_resume(server, second_server,
                                                                  local_ray, tmp_path):
    from fashiontag.protocol import ATTRIBUTES_MODEL
    from fashiontag.tagging.ray_runner import tag_catalog_ray

    paths = make_catalog(120)
    servers = (server, second_server)
    before = [_stats(s, ATTRIBUTES_MODEL)[0] for s in servers]
    settings = TagSettings(urls=tuple(s.grpc_url for s in servers), concurrency=8,
                           balance="round_robin")
    out = tmp_path / "tags.jsonl"
    half = [item for item in open_sources([paths[0].parent])][:50]
    with JsonlSink(out) as sink:  # a first, partial run
        first = tag_catalog_ray(half, sink, settings, workers=2, batch_size=16)
    assert first.done == 50 and first.failed == 0
    with JsonlSink(out, resume=True) as sink:  # the whole catalog, resumed
        second = tag_catalog_ray(open_sources([paths[0].parent]), sink, settings, workers=2,
                                 batch_size=16)
    assert second.resumed == 50 and second.done == 70

    records = [json.loads(line) for line in out.read_text().splitlines()]
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == len(paths)
    assert all("attributes" in r and r["path"].endswith(r["id"]) for r in records)
    served = [_stats(s, ATTRIBUTES_MODEL)[0] - b for s, b in zip(servers, before, strict=True)]
    assert sum(served) == len(paths)
    assert min(served) >= len(paths) // 4, f"one server did almost nothing: {served}"


def test_a_ray_run_that_cannot_reach_any_server_stops_with_a_clear_error(local_ray, tmp_path,
                                                                         sample_photos):
    from fashiontag.errors import FashiontagError
    from fashiontag.serving.server import find_free_port
    from fashiontag.tagging.ray_runner import tag_catalog_ray

    settings = TagSettings(urls=(f"127.0.0.1:{find_free_port()}",))
    with JsonlSink(tmp_path / "tags.jsonl") as sink, \
            pytest.raises(FashiontagError, match="Ray tagging stopped"):
        tag_catalog_ray(open_sources(sample_photos), sink, settings, workers=1)


def test_the_cli_runs_the_ray_engine_on_a_local_ray_of_its_own(server, tmp_path):
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "tags.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-m", "fashiontag", "tag", str(root / "samples"),
                           "--out", str(out), "--url", server.grpc_url, "--engine", "ray",
                           "--workers", "1"], capture_output=True, text=True, timeout=300,
                          cwd=root, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    files = [p for p in (root / "samples").rglob("*") if p.is_file()]
    assert sorted(r["id"] for r in records) == sorted(p.relative_to(root / "samples").as_posix()
                                                      for p in files)
    errors = {r["id"] for r in records if "error" in r}
    assert {"broken/truncated.jpg", "broken/not-an-image.jpg"} <= errors
    assert errors == {"README.md", "broken/truncated.jpg", "broken/not-an-image.jpg"}
