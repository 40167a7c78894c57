"""The local tagging engine: a source, one streaming gRPC client (one or more servers), a sink.

Both engines (this one and :mod:`fashiontag.tagging.ray_runner`) share the same pieces: ids
already in the output are skipped (resume), every result becomes exactly one record, and the run
is counted by :class:`RunStats`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from fashiontag.client.defaults import DEFAULT_DECODE, DEFAULT_TIMEOUT_S
from fashiontag.client.errors import RETRYABLE_ERROR_TYPES
from fashiontag.client.results import TagResult
from fashiontag.errors import FashiontagError
from fashiontag.tagging.progress import Progress
from fashiontag.tagging.sink import RecordSink
from fashiontag.tagging.sources import SourceItem, skip_done
from fashiontag.tagging.stats import RunStats

__all__ = ["TagSettings", "DEFAULT_DECODE", "tag_catalog", "record_for", "write_result",
           "count_skips", "OutageBreaker", "ServerOutageError"]

@dataclass(frozen=True)
class TagSettings:
    """How a catalog run talks to the servers; plain values, so Ray can ship it to workers."""

    urls: tuple[str, ...] = ("127.0.0.1:8001",)
    decode: str = DEFAULT_DECODE
    concurrency: int = 16  # images in flight per client
    retries: int = 8
    backoff_s: float = 0.25
    max_backoff_s: float = 8.0
    timeout_s: float = DEFAULT_TIMEOUT_S  # per request
    balance: str = "least_loaded"
    load_threads: int = 2  # file reading (+ decoding with decode="client") per client
    outage_limit: int = 64  # deferred images in a row that stop the run (server down)
    tls_ca: str | None = None  # PEM CA bundle: TLS to the servers, verified against it
    tls_cert: str | None = None  # client certificate + key (PEM paths): mutual TLS
    tls_key: str | None = None
    experimental: bool = False  # also record attributes never validated on real photos
    shared_memory: bool = False  # tiles through Triton's system shared memory (same host)

    def client_options(self, rotate: int = 0):
        from fashiontag.client import ClientOptions

        urls = self.urls[rotate % len(self.urls):] + self.urls[:rotate % len(self.urls)]
        return ClientOptions(url=urls, decode=self.decode, timeout_s=self.timeout_s,
                             balance=self.balance, ssl=bool(self.tls_ca or self.tls_cert),
                             root_certificates=self.tls_ca, private_key=self.tls_key,
                             certificate_chain=self.tls_cert, experimental=self.experimental,
                             shared_memory=self.shared_memory)

    def stream_kwargs(self) -> dict:
        return {"concurrency": self.concurrency, "retries": self.retries,
                "backoff_s": self.backoff_s, "max_backoff_s": self.max_backoff_s,
                "load_threads": self.load_threads}

    def with_urls(self, urls: Iterable[str]) -> TagSettings:
        return replace(self, urls=tuple(urls))


def record_for(result: TagResult, path: Path | str | None) -> dict:
    """The JSONL record: id, path, attributes, model, model_version — or error, error_type."""
    if path is not None:
        result.extra["path"] = str(path)
    return result.to_record()


class ServerOutageError(FashiontagError):
    """Every recent image failed because the server is unavailable: the run stops early."""


def write_result(sink: RecordSink, record: dict, stats: RunStats, progress: Progress | None,
                 latency_ms: float | None, attempts: int = 1) -> bool:
    """Write first, count second: a record counted is a record on disk.

    A failure that is the server's state, not the image's (unavailable, queue full, deadline
    exceeded even after the retries), is *not* written: the image is not done, and
    ``--resume`` tags it once the server is back. Returns whether a record was written.
    """
    if record.get("error_type") in RETRYABLE_ERROR_TYPES:
        stats.deferred += 1
        return False
    sink.write(record)
    ok = "error" not in record
    stats.add(ok, latency_ms, record.get("error_type"), attempts)
    if progress is not None:
        progress.update(ok)
    return True


class OutageBreaker:
    """Trips after ``limit`` deferred images in a row: with the server gone, retrying every
    remaining image of a catalog would only take hours to write nothing."""

    def __init__(self, limit: int) -> None:
        self.limit, self.streak = limit, 0

    def observe(self, written: bool, stats: RunStats) -> None:
        self.streak = 0 if written else self.streak + 1
        if self.streak >= self.limit:
            raise ServerOutageError(
                f"the server is unavailable: the last {self.streak} images failed after their "
                f"retries; {stats.written} records written, {stats.deferred} images deferred. "
                "Rerun with --resume once the server is back")


def count_skips(stats: RunStats):
    def on_skip(item: SourceItem, repeated: bool) -> None:
        if repeated:
            stats.repeated += 1
        else:
            stats.resumed += 1
    return on_skip


def tag_catalog(items: Iterable[SourceItem], sink: RecordSink, settings: TagSettings, *,
                stats: RunStats | None = None, progress: Progress | None = None) -> RunStats:
    """Tag every item not yet in ``sink`` with one streaming client; returns the run's stats.

    Results are taken in completion order (records carry their id), so one slow image never
    holds up the others; memory is bounded by ``settings.concurrency``.
    """
    from fashiontag.client import TagClient

    stats = stats or RunStats()
    paths: dict[str, Path] = {}  # only the images in flight

    def pending():
        for item in skip_done(items, sink.done_ids, count_skips(stats)):
            paths[item.id] = item.path
            yield item

    breaker = OutageBreaker(settings.outage_limit)
    with TagClient(options=settings.client_options()) as client:
        for result in client.tag_stream(pending(), ordered=False, **settings.stream_kwargs()):
            record = record_for(result, paths.pop(result.id, None))
            written = write_result(sink, record, stats, progress, result.latency_ms,
                                   result.attempts)
            breaker.observe(written, stats)
    return stats.finish()
