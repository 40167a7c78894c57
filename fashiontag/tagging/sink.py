"""Where records go, exactly once: an append-only JSONL file (or Parquet parts) that a killed run
can resume.

JSONL: each record is one ``os.write`` of one full line on an ``O_APPEND`` descriptor, and the
file is fsynced every ``fsync_every`` records or ``fsync_interval_s`` seconds. A process killed
with SIGKILL can at worst leave one torn (newline-less) last line, never a mixed one; ``resume``
cuts that line off and reads the ids already written, so the run goes on with the rest and every
image ends up in the file exactly once. Parquet: records are buffered and written as whole part
files (temp file, fsync, atomic rename), so a part is either complete or absent.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Protocol

from fashiontag.errors import FashiontagError

__all__ = ["RecordSink", "SinkError", "JsonlSink", "ParquetSink", "open_sink", "SINK_FORMATS",
           "read_jsonl_ids"]

SINK_FORMATS = ("jsonl", "parquet")


class SinkError(FashiontagError):
    """The output cannot be opened, resumed or written."""


class RecordSink(Protocol):
    done_ids: set[str]  # ids already in the output when it was opened (resume)

    def write(self, record: dict) -> None: ...

    def close(self) -> None: ...


def _fsync_dir(path: Path) -> None:
    """Make a file's creation/rename durable, not just its contents."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _lock(fd: int, path: Path) -> None:
    """One writer per output: a second run appending to the same file would duplicate records.
    The kernel drops the lock when its holder dies, even by SIGKILL."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SinkError(f"{path} is being written by another process (another "
                        "`fashiontag tag` with the same --out?)") from None


def _check_fresh(path: Path, resume: bool, overwrite: bool) -> None:
    if path.exists() and not (resume or overwrite):
        raise SinkError(f"{path} already exists: pass --resume to continue it or --overwrite to "
                        "start again")


def read_jsonl_ids(path: Path, repair: bool = True) -> tuple[set[str], int]:
    """Ids of the complete records in a JSONL file, and how many bytes of a torn last line were
    cut off (``repair``) or found. A malformed *complete* line means the file is not ours (or was
    edited): that is an error, never silently skipped."""
    ids: set[str] = set()
    good_end = 0
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                break  # torn: the writer died inside its last write
            good_end += len(line)
            if not line.strip():
                continue
            try:
                ids.add(str(json.loads(line)["id"]))
            except (ValueError, KeyError, TypeError):
                raise SinkError(f"{path}, line {number}: not a fashiontag record; refusing to "
                                "resume into it") from None
        size = f.seek(0, os.SEEK_END)
    torn = size - good_end
    if torn and repair:
        with path.open("r+b") as f:
            f.truncate(good_end)
            f.flush()
            os.fsync(f.fileno())
    return ids, torn


class JsonlSink:
    """Append-only JSON lines; ``path == "-"`` writes to stdout (no resume)."""

    def __init__(self, path: str | Path, *, resume: bool = False, overwrite: bool = False,
                 fsync_every: int = 256, fsync_interval_s: float = 2.0) -> None:
        self.path = Path(path)
        self.done_ids: set[str] = set()
        self.torn_bytes = 0
        self.fsync_every, self.fsync_interval_s = fsync_every, fsync_interval_s
        self._unsynced, self._last_sync = 0, time.monotonic()
        if str(path) == "-":
            self._fd = sys.stdout.fileno()
            self._durable = False
            return
        _check_fresh(self.path, resume, overwrite)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SinkError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(os.fstat(self._fd).st_mode):
            os.close(self._fd)
            # resuming would read a device or pipe "to the end" (/dev/zero never ends)
            raise SinkError(f"{self.path} is not a regular file; write JSONL to a file, or to "
                            "stdout with --out -")
        _lock(self._fd, self.path)
        if resume:
            self.done_ids, self.torn_bytes = read_jsonl_ids(self.path)
        elif overwrite:
            os.ftruncate(self._fd, 0)
        self._durable = True
        _fsync_dir(self.path.parent)

    def write(self, record: dict) -> None:
        data = (json.dumps(record) + "\n").encode()
        view = memoryview(data)
        try:
            while view:  # one write() for a regular file; the loop only guards short writes
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            # a torn last line, if any, is cut off by --resume: nothing half-written counts
            raise SinkError(f"cannot write to {self.path}: {exc.strerror or exc}; the records "
                            "before this one are complete, rerun with --resume when it is "
                            "writable again") from None
        self._unsynced += 1
        if self._durable and (self._unsynced >= self.fsync_every
                              or time.monotonic() - self._last_sync >= self.fsync_interval_s):
            self.sync()

    def sync(self) -> None:
        if self._durable and self._unsynced:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise SinkError(f"cannot flush {self.path} to disk: {exc.strerror or exc}; "
                                "rerun with --resume when it is writable again") from None
        self._unsynced, self._last_sync = 0, time.monotonic()

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            self.sync()
        finally:
            if self._durable:
                os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ParquetSink:
    """A folder of Parquet parts, one column per attribute value and confidence (for analytics).
    Needs ``pyarrow`` (``pip install 'fashiontag[parquet]'``). A run killed mid-part loses only
    the unwritten part's records, which ``resume`` tags again."""

    def __init__(self, path: str | Path, attributes: list[str], *, resume: bool = False,
                 overwrite: bool = False, rows_per_part: int = 5000) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise SinkError("Parquet output needs pyarrow: pip install 'fashiontag[parquet]'"
                            ) from None
        self._pa, self._pq = pa, pq
        self.path = Path(path)
        self.attributes = list(attributes)
        self.rows_per_part = rows_per_part
        self.done_ids: set[str] = set()
        self.torn_bytes = 0
        self._rows: list[dict] = []
        _check_fresh(self.path, resume, overwrite)
        if self.path.exists() and not self.path.is_dir():
            raise SinkError(f"{self.path} exists and is not a folder of Parquet parts")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock_fd: int | None = os.open(self.path / ".lock", os.O_WRONLY | os.O_CREAT,
                                                0o644)
        except OSError as exc:
            raise SinkError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        _lock(self._lock_fd, self.path)
        if overwrite and not resume:
            for part in self.path.glob("part-*.parquet"):
                part.unlink()
        for stale in self.path.glob(".part-*.tmp"):
            stale.unlink()  # a part whose writer died before the rename
        parts = sorted(self.path.glob("part-*.parquet"))
        for part in parts:
            self.done_ids.update(str(i) for i in pq.read_table(part, columns=["id"])["id"]
                                 .to_pylist())
        self._next_part = 1 + max((int(p.stem.split("-")[1]) for p in parts), default=-1)
        self.schema = pa.schema(
            [("id", pa.string()), ("path", pa.string()), ("model", pa.string()),
             ("model_version", pa.string()), ("error", pa.string()), ("error_type", pa.string())]
            + [f for name in self.attributes
               for f in ((name, pa.string()), (f"{name}_confidence", pa.float32()),
                         (f"{name}_applicable", pa.bool_()))])

    def write(self, record: dict) -> None:
        row = {k: record.get(k) for k in ("id", "path", "model", "model_version", "error",
                                          "error_type")}
        for name, value in (record.get("attributes") or {}).items():
            if name in self.attributes:
                row[name] = value.get("value")
                row[f"{name}_confidence"] = value.get("confidence")
                row[f"{name}_applicable"] = value.get("applicable", True)
        self._rows.append(row)
        if len(self._rows) >= self.rows_per_part:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        table = self._pa.Table.from_pylist(self._rows, schema=self.schema)
        final = self.path / f"part-{self._next_part:05d}.parquet"
        tmp = self.path / f".part-{self._next_part:05d}.tmp"
        self._pq.write_table(table, tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.path)
        self._next_part += 1
        self._rows = []

    def close(self) -> None:
        if self._lock_fd is None:
            return
        self.flush()
        os.close(self._lock_fd)
        self._lock_fd = None

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_sink(path: str | Path, fmt: str = "jsonl", *, resume: bool = False,
              overwrite: bool = False, attributes: list[str] | None = None) -> RecordSink:
    if fmt == "jsonl":
        return JsonlSink(path, resume=resume, overwrite=overwrite)
    if fmt == "parquet":
        if str(path) == "-":
            raise SinkError("Parquet output needs a folder path, not '-'")
        return ParquetSink(path, attributes or [], resume=resume, overwrite=overwrite)
    raise SinkError(f"unknown output format {fmt!r}; one of {SINK_FORMATS}")
