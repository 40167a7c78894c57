"""The Ray Data engine calling two real servers: on a local Ray instance started by the test, and
from the CLI on a real two-node Ray cluster (``ray start --head`` + ``ray start --address``)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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
RAY = Path(sys.executable).parent / "ray"


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


@contextlib.contextmanager
def ray_cluster(nodes: int = 2) -> Iterator[tuple[str, dict]]:
    """A real Ray cluster of ``nodes`` nodes on this machine: ``ray start --head`` and
    ``ray start --address`` (each worker node with its own custom resource ``node_<i>``), small
    object stores. Each ``ray start --block`` runs in its own process group with its node's
    processes, so ending those groups (never ``ray stop``, which would stop every Ray on the
    machine) tears the cluster down. Token authentication on, as on a real cluster: one token
    for every node and the driver. Yields the head's address and the environment a driver needs."""
    from fashiontag.serving.server import find_free_port

    temp = Path(tempfile.mkdtemp(prefix="ftray", dir="/tmp"))  # short: Ray's socket paths
    port = find_free_port()
    common = ["--block", "--num-cpus", "2", "--object-store-memory", str(80 * 2**20),
              "--temp-dir", str(temp), "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    starts = [["--head", "--port", str(port), "--include-dashboard", "false"]] + [
        ["--address", f"127.0.0.1:{port}", "--resources", json.dumps({f"node_{i}": 1})]
        for i in range(1, nodes)]
    procs: list[subprocess.Popen] = []
    try:
        for args in starts:
            log = temp / f"start-{len(procs)}.log"
            with log.open("w") as f:
                procs.append(subprocess.Popen([str(RAY), "start", *args, *common], stdout=f,
                                              stderr=subprocess.STDOUT, env=env,
                                              start_new_session=True))
            deadline = time.monotonic() + 120
            while "Ray runtime started" not in log.read_text():
                assert procs[-1].poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "a Ray node did not start in 120 s"
                time.sleep(0.2)
        yield f"127.0.0.1:{port}", env
    finally:
        for proc in reversed(procs):  # each node's process group: ray start, raylet, workers
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        grace, deadline = time.monotonic() + 5, time.monotonic() + 60
        while _processes_using(temp):  # every raylet, GCS and worker of this cluster is gone
            if time.monotonic() > grace:  # what is still shutting down gets SIGKILL
                for pid in _processes_using(temp):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            assert time.monotonic() < deadline, f"Ray left processes: {_processes_using(temp)}"
            time.sleep(0.2)
        for proc in procs:
            proc.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def _processes_using(folder: Path) -> list[int]:
    """Process ids whose command line names ``folder`` (Ray passes its session dir to all)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(folder).encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_the_cli_spreads_a_catalog_over_a_two_node_ray_cluster_and_two_servers(
        server, second_server, tmp_path):
    root = Path(__file__).resolve().parents[2]
    out, stats_file = tmp_path / "tags.jsonl", tmp_path / "stats.json"
    photos = make_catalog(60)
    listing = tmp_path / "catalog.txt"  # the generated photos and the samples, broken ones too
    files = sorted(p for p in (root / "samples").rglob("*") if p.is_file())
    listing.write_text("".join(f"{p}\n" for p in photos + files))
    with ray_cluster(2) as (address, env):
        done = subprocess.run(
            [sys.executable, "-m", "fashiontag", "tag", str(listing), "--out", str(out),
             "--url", server.grpc_url, "--url", second_server.grpc_url, "--engine", "ray",
             "--ray-address", address, "--workers", "2", "--batch-size", "8",
             "--stats-json", str(stats_file)],
            capture_output=True, text=True, timeout=300, cwd=root, env=env)
    assert done.returncode == 0, done.stderr[-3000:]

    records = [json.loads(line) for line in out.read_text().splitlines()]
    ids = [r["id"] for r in records]
    expected = len(photos) + len(files)
    assert len(ids) == len(set(ids)) == expected  # every image written exactly once
    errors = {Path(r["id"]).name for r in records if "error" in r}
    assert errors == {"README.md", "truncated.jpg", "not-an-image.jpg"}
    nodes = json.loads(stats_file.read_text())["ray_nodes"]
    print("images per Ray node:", json.dumps(nodes))
    assert len(nodes) == 2, nodes  # both nodes tagged: the head and the one with node_1
    assert sorted(n["resources"] for n in nodes.values()) == [[], ["node_1"]]
    assert all(n["images"] > 0 for n in nodes.values()), nodes
    assert sum(n["images"] for n in nodes.values()) == expected
