"""Faults the server must survive: a python-backend stub killed mid-service."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fashiontag.client import ClientError, TagClient
from fashiontag.protocol import ATTRIBUTES_MODEL, PREPROCESS_MODEL
from fashiontag.serving.metrics import SERVER_RESTARTS, WATCHDOG_HEALS
from fashiontag.serving.server import TritonServer
from fashiontag.serving.watchdog import stub_processes
from tests.functional.conftest import free_port_config
from tests.functional.test_metrics import scrape, total


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
    stubs = {pid: s for pid, s in stub_processes(server.process.pid).items() if s.model == model}
    assert stubs, f"no stub found for {model}"
    pid = next(iter(stubs))
    os.kill(pid, signal.SIGKILL)
    return pid


@pytest.mark.parametrize("model_control", ["none", "explicit"])
@pytest.mark.parametrize("model", [ATTRIBUTES_MODEL, PREPROCESS_MODEL])
def test_killed_stub_is_healed_and_retrying_clients_complete(repository, sample_photos, model,
                                                             model_control):
    image = sample_photos[0].read_bytes()
    # the request that was inside the killed stub never ends, so a graceful stop would wait
    # for the whole exit timeout: keep it short here
    config = free_port_config(repository, model_control=model_control, exit_timeout_s=3)
    # decode="server": the requests pass through the preprocess stub being killed
    with TritonServer(config) as server, \
            TagClient(server.grpc_url, decode="server", timeout_s=30) as client:
        expected = client.tag(image).vector
        _kill_stub(server, model)
        results = [_tag_with_retries(client, image) for _ in range(5)]
        assert all(abs(r.vector - expected).max() < 1e-5 for r, _ in results)
        if model_control == "none":
            assert server.restarts == 1  # no model control: the launcher restarts the server
        else:
            assert server.restarts == 0  # model control on: only the broken model is reloaded
        assert len(stub_processes(server.process.pid)) >= 3
        launcher = scrape(server.launcher_metrics_url)  # what an operator's Prometheus sees
        assert total(launcher, WATCHDOG_HEALS.name) == 1
        assert total(launcher, SERVER_RESTARTS.name) == server.restarts


def test_a_server_that_exits_on_its_own_is_started_again_and_retrying_clients_complete(
        repository, sample_photos):
    image = sample_photos[0].read_bytes()
    config = free_port_config(repository, exit_timeout_s=3)
    with TritonServer(config) as server, \
            TagClient(server.grpc_url, decode="server", timeout_s=30) as client:
        expected = client.tag(image).vector
        first_pid = server.process.pid
        os.kill(first_pid, signal.SIGKILL)  # what the OOM killer does
        results = [_tag_with_retries(client, image) for _ in range(3)]
        assert all(abs(r.vector - expected).max() < 1e-5 for r, _ in results)
        assert server.restarts == 1 and server.process.pid != first_pid
        assert sum(failures for _, failures in results) >= 1  # the outage was real
    assert not server.is_running()  # stop() is final: the watchdog does not revive it
    assert not list(Path("/dev/shm").glob(f"{server.shm_prefix}*"))


# --------------------------------------------------------------------------- catalog runs
def _tag_cli(*args: str, timeout: float = 300) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fashiontag", "tag", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_server_killed_mid_run_then_resume_tags_every_image_exactly_once(repository, tmp_path):
    from benchmarks.catalog import make_catalog

    images = make_catalog(160, root=tmp_path / "catalog")
    folder, out = images[0].parent, tmp_path / "tags.jsonl"
    server = TritonServer(free_port_config(repository, watchdog=False))
    server.start()
    try:
        run = _tag_cli(str(folder), "--out", str(out), "--url", server.grpc_url,
                       "--concurrency", "4", "--retries", "2", "--outage-limit", "8",
                       "--timeout", "10")
        deadline = time.monotonic() + 120
        while len(_records(out)) < 20 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.05)
        os.killpg(server.process.pid, signal.SIGKILL)  # the server dies mid-run
        _, stderr = run.communicate(timeout=240)
        assert run.returncode != 0, "a run that could not finish must not exit 0"
        assert "--resume" in stderr
        first = _records(out)
        assert 20 <= len(first) < len(images)
        # nothing the outage caused is on disk as a result: those images are simply not done
        assert not [r for r in first if "error" in r], [r for r in first if "error" in r][:3]

        server.restart()  # same ports; also removes the killed server's /dev/shm regions
        again = _tag_cli(str(folder), "--out", str(out), "--resume", "--url", server.grpc_url)
        _, stderr = again.communicate(timeout=600)
        assert again.returncode == 0, stderr
    finally:
        server.stop()
    records = _records(out)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == len(images)  # every image exactly once
    assert all("attributes" in r for r in records)
    assert not list(Path("/dev/shm").glob(f"{server.shm_prefix}*"))


def _file_size_limit(limit: int):
    """A quota the size of a few records: Python ignores SIGXFSZ, so the write that crosses it
    gets EFBIG half-way, exactly like a disk filling up under the run."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_is_a_clear_error_and_resume_repairs_the_torn_line(server, tmp_path,
                                                                    sample_photos):
    out = tmp_path / "tags.jsonl"
    args = [sys.executable, "-m", "fashiontag", "tag", *map(str, sample_photos), "--out",
            str(out), "--url", server.grpc_url]
    full = subprocess.run(args, capture_output=True, text=True, timeout=180,
                          preexec_fn=_file_size_limit(100))
    assert full.returncode == 2, full.stderr
    assert "File too large" in full.stderr and "--resume" in full.stderr
    assert "Traceback" not in full.stderr
    assert out.stat().st_size == 100  # a torn first line: the disk filled up inside it
    again = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    records = _records(out)  # the torn line was cut off; every image exactly once
    assert sorted(r["id"] for r in records) == sorted(map(str, sample_photos))
    assert all("attributes" in r for r in records)


def test_output_that_is_not_a_regular_file_is_refused(server, tmp_path, sample_photos):
    out = tmp_path / "tags.jsonl"
    out.symlink_to("/dev/zero")  # resuming would read it "to the end" forever
    run = _tag_cli(str(sample_photos[0]), "--out", str(out), "--resume",
                   "--url", server.grpc_url)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 2 and "not a regular file" in stderr, stderr
    assert "Traceback" not in stderr


def test_unwritable_output_location_is_refused_before_any_work(server, tmp_path,
                                                               sample_photos):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    run = _tag_cli(str(sample_photos[0]), "--out", str(blocker / "tags.jsonl"),
                   "--url", server.grpc_url)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 2 and "cannot open" in stderr and "Traceback" not in stderr
