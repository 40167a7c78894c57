"""Starting and stopping tritonserver leaves nothing behind; the CLI paths work end to end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fashiontag.client import ClientOptions
from fashiontag.errors import ServerError
from fashiontag.serving.server import SHM_PREFIX_BASE, TritonServer, find_free_port
from tests.functional.conftest import free_port_config

ROOT = Path(__file__).resolve().parents[2]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_stop_removes_server_stubs_and_shared_memory(repository):
    server = TritonServer(free_port_config(repository))
    with server:
        pgid = server.process.pid
        assert server.is_ready()
        assert list(Path("/dev/shm").glob(f"{server.shm_prefix}*"))
    assert not _group_alive(pgid)
    assert not list(Path("/dev/shm").glob(f"{server.shm_prefix}*"))


def test_default_bind_is_loopback_only(repository):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to probe")
    with TritonServer(free_port_config(repository)) as server:
        port = server.config.grpc_port
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex(("127.0.0.1", port)) == 0
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex((address, port)) != 0


def test_missing_repository_is_a_clear_error(tmp_path):
    with pytest.raises(ServerError, match="does not exist"):
        TritonServer(free_port_config(tmp_path / "nowhere")).start()


def test_broken_repository_fails_fast_with_the_log(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.pbtxt").write_text("this is not protobuf text")
    with pytest.raises(ServerError, match="exited|not ready"):
        TritonServer(free_port_config(tmp_path, startup_timeout_s=60)).start()


def test_serve_command_stops_cleanly_on_sigterm(repository):
    ports = [str(find_free_port()) for _ in range(3)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "fashiontag", "serve", "--repository", str(repository),
         "--grpc-port", ports[0], "--http-port", ports[1], "--metrics-port", ports[2]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            if "fashiontag serving" in line or time.monotonic() > deadline:
                break
        assert proc.poll() is None, "serve exited early"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not _group_alive(proc.pid)
    assert not list(Path("/dev/shm").glob(f"{SHM_PREFIX_BASE}ft{proc.pid}_*"))


def test_demo_once_writes_one_record_per_sample_image(repository, tmp_path):
    out = tmp_path / "tags.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "fashiontag", "demo", "--once", "--repository", str(repository),
         "--grpc-port", "0", "--http-port", "0", "--metrics-port", "0", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    images = [p for p in (ROOT / "samples").rglob("*") if p.suffix in (".jpg", ".png")]
    assert len(records) == len(images) and len({r["id"] for r in records}) == len(records)
    errors = {r["id"] for r in records if "error" in r}
    assert errors == {"broken/not-an-image.jpg", "broken/truncated.jpg"}
    ok = [r for r in records if "attributes" in r]
    served = ClientOptions().served_model  # where the client's default decoding sends requests
    assert all(r["model"] == served and "category" in r["attributes"] for r in ok)
    assert "garment type right on" in done.stdout and "people said" in done.stdout
