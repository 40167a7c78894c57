"""``fashiontag tag`` end to end against a real tritonserver: per-image errors, SIGKILL and
resume, a server restart in the middle of a run, Parquet output."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from benchmarks.catalog import make_catalog
from fashiontag.serving.server import TritonServer
from tests.functional.conftest import free_port_config

ROOT = Path(__file__).resolve().parents[2]


def _huge_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A well-formed PNG whose header claims 1.6 gigapixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b""))


def _tag(*args, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fashiontag", "tag", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, **popen)


def _records(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the output ends in a torn line"
    return [json.loads(line) for line in data.decode().splitlines()]


def _assert_exactly_once(records: list[dict], ids: set[str]) -> None:
    seen = [r["id"] for r in records]
    assert len(seen) == len(set(seen)), "an image was written twice"
    assert set(seen) == ids


@pytest.fixture(scope="module")
def dirty_catalog(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Real photos plus every kind of bad file; → (folder, {bad id: expected error text})."""
    root = tmp_path_factory.mktemp("dirty")
    shutil.copytree(ROOT / "samples" / "clothing", root / "clothing")
    shutil.copytree(ROOT / "samples" / "photos", root / "photos")
    photo = (ROOT / "samples" / "photos" / "grace_hopper.jpg").read_bytes()
    bad = {"bad/empty.jpg": (b"", "empty input"),
           "bad/notes.txt": (b"shopping list: socks\n", "not a recognised image"),
           "bad/corrupt.jpg": (photo[: len(photo) // 3], "truncated JPEG"),
           "bad/noise.jpg": (b"\xff\xd8\xff\xe0" + os.urandom(3000), "image"),
           "bad/huge.png": (_huge_png(), "refused before decoding")}
    for rel, (data, _) in bad.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root, {rel: text for rel, (_, text) in bad.items()}


@pytest.mark.parametrize("decode", ["client", "server"])
def test_every_file_of_a_directory_gets_one_record_and_bad_files_only_their_own_error(
        server, client, dirty_catalog, tmp_path, decode):
    folder, bad = dirty_catalog
    out = tmp_path / "tags.jsonl"
    done = _tag(folder, "--out", out, "--url", server.grpc_url, "--decode", decode)
    assert done.returncode == 0, done.stderr
    records = _records(out)
    all_ids = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    _assert_exactly_once(records, all_ids)
    for r in records:
        assert r["path"] == str(folder / r["id"])
        if r["id"] in bad:
            assert r["error_type"] == "InvalidImageError", r
            assert bad[r["id"]] in r["error"], r
            assert "attributes" not in r
        else:
            assert "error" not in r, r
            assert r["model"] and r["model_version"] == "1"
            taxonomy = client.taxonomy
            assert list(r["attributes"]) == taxonomy.reported()
            garment = r["attributes"]["category"]["value"]
            for name, value in r["attributes"].items():  # the hierarchy, record by record
                assert value.get("applicable", True) == taxonomy[name].applies(garment)
                if not taxonomy[name].applies(garment):
                    assert value["value"] is None
    assert f"{len(all_ids) - len(bad)} done, {len(bad)} failed" in done.stderr
    assert "images/s" in done.stderr and "p99" in done.stderr


def test_experimental_attributes_are_recorded_only_when_asked_for(server, client, tmp_path):
    experimental = {a.name for a in client.taxonomy if a.experimental}
    assert experimental >= {"coat_length", "collar_design", "neckline_design"}
    for flags, expected in (((), set()), (("--experimental",), experimental)):
        out = tmp_path / f"tags{len(flags)}.jsonl"
        done = _tag(ROOT / "samples" / "clothing", "--out", out, "--url", server.grpc_url,
                    *flags)
        assert done.returncode == 0, done.stderr
        for record in _records(out):
            assert set(record["attributes"]) & experimental == expected


def test_a_csv_source_and_strict_mode(server, dirty_catalog, tmp_path):
    folder, bad = dirty_catalog
    table = tmp_path / "catalog.csv"
    rows = ["sku,image"] + [f"sku-{i},{folder / rel}" for i, rel in
                            enumerate(["photos/astronaut.jpg", "bad/empty.jpg"])]
    table.write_text("\n".join(rows) + "\n")
    out = tmp_path / "tags.jsonl"
    done = _tag(table, "--out", out, "--url", server.grpc_url, "--path-column", "image",
                "--id-column", "sku", "--strict")
    assert done.returncode == 1, done.stderr  # one image failed and --strict says so
    records = {r["id"]: r for r in _records(out)}
    assert set(records) == {"sku-0", "sku-1"}
    assert "attributes" in records["sku-0"] and records["sku-1"]["error_type"] == \
        "InvalidImageError"


def _wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"tag exited early ({proc.returncode}): "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} records after {timeout} s")


def _start_tag(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fashiontag", "tag", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True)


def test_a_run_killed_with_sigkill_resumes_to_every_image_exactly_once(server, tmp_path):
    paths = make_catalog(160)
    folder = paths[0].parent
    out = tmp_path / "tags.jsonl"
    proc = _start_tag(folder, "--out", out, "--url", server.grpc_url, "--concurrency", "2")
    try:
        _wait_for_lines(out, 30, proc)
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    written = out.read_bytes()
    assert 30 <= written.count(b"\n") < len(paths), "the kill did not land mid-run"
    if written.endswith(b"\n"):
        # The kill fell between two writes (the usual case). Leave what a kill *inside* a
        # write leaves, half a line, so the resume also has to repair it.
        with out.open("ab") as f:
            f.write(b'{"id": "000150.jpg", "path": "/half/a/rec')

    done = _tag(folder, "--out", out, "--url", server.grpc_url, "--resume")
    assert done.returncode == 0, done.stderr
    records = _records(out)
    _assert_exactly_once(records, {p.name for p in paths})
    assert all("attributes" in r for r in records)
    assert "resumed" in done.stderr


def test_the_run_survives_a_server_restart_and_completes(repository, tmp_path):
    paths = make_catalog(160)
    config = free_port_config(repository, exit_timeout_s=5)
    first = TritonServer(config).start()
    out, stats = tmp_path / "tags.jsonl", tmp_path / "stats.json"
    proc = _start_tag(paths[0].parent, "--out", out, "--url", first.grpc_url,
                      "--concurrency", "4", "--retries", "40", "--timeout", "30",
                      "--stats-json", stats)
    second = None
    try:
        _wait_for_lines(out, 20, proc)
        first.stop()
        assert out.read_bytes().count(b"\n") < len(paths), "the run ended before the restart"
        time.sleep(1.0)  # requests now fail with UNAVAILABLE and back off
        second = TritonServer(config).start()  # same ports
        assert proc.wait(300) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for s in (first, second):
            if s is not None:
                s.stop()
    records = _records(out)
    _assert_exactly_once(records, {p.name for p in paths})
    assert all("attributes" in r for r in records), [r for r in records if "error" in r][:3]
    summary = json.loads(stats.read_text())
    assert summary["retried"] >= 1 and summary["failed"] == 0


def test_parquet_output_has_a_row_per_image_and_resumes(server, client, dirty_catalog,
                                                        tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    folder, bad = dirty_catalog
    out = tmp_path / "tags.parquet"
    first = _tag(folder, "--out", out, "--format", "parquet", "--url", server.grpc_url)
    assert first.returncode == 0, first.stderr
    table = pq.read_table(out)
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert sorted(table["id"].to_pylist()) == sorted(files)
    taxonomy = client.taxonomy
    for name in taxonomy.reported():
        assert {name, f"{name}_confidence", f"{name}_applicable"} <= set(table.column_names)
    assert not any(name in table.column_names for name in set(taxonomy.names)
                   - set(taxonomy.reported()))  # experimental ones only with --experimental
    rows = table.to_pylist()
    for row in rows:  # the hierarchy survives into Parquet
        if row["category"] is not None and not taxonomy["pant_length"].applies(row["category"]):
            assert row["pant_length_applicable"] is False and row["pant_length"] is None
    again = _tag(folder, "--out", out, "--format", "parquet", "--url", server.grpc_url,
                 "--resume")
    assert again.returncode == 0 and f"{len(files)} resumed" in again.stderr
    assert pq.read_table(out).num_rows == len(files)


def test_without_out_records_go_to_stdout_as_before(server, sample_photos):
    done = _tag(*sample_photos, "--url", server.grpc_url)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in sorted(records, key=lambda r: r["id"])] == \
        sorted(str(p) for p in sample_photos)
