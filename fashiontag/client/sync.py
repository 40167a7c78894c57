"""Blocking gRPC client: ``tag`` one image, ``tag_stream`` a catalog with bounded concurrency."""

from __future__ import annotations

import heapq
import itertools
import queue
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fashiontag.client._common import (
    ClientOptions,
    ImageItem,
    Preparer,
    TaxonomyBook,
    UnknownTaxonomyError,
    config_json,
    item_id,
    preparer_from_config,
    requested_outputs,
    taxonomy_source,
    to_result,
)
from fashiontag.client._stream import Balancer, Reorderer, RetryPolicy
from fashiontag.client.errors import ClientError, translate
from fashiontag.client.results import AttributeSet, TagResult
from fashiontag.protocol import PREPROCESS_MODEL
from fashiontag.taxonomy import Taxonomy

__all__ = ["TagClient"]


@dataclass
class _Task:
    """One image on its way through ``tag_stream``."""

    index: int
    item: Any
    started: float
    id: str = ""
    inputs: list | None = None
    tile: Any = None  # with shared memory: the tile, written into a region at each send
    attempts: int = 0
    endpoint: int = 0


class TagClient:
    """Tags images through the ``fashiontag`` ensemble over gRPC.

    The taxonomy is read from the served model's config on first use and re-read when a response
    comes from a model version this client does not know yet (a hot reload), so labels always
    come from the model version that answered.
    With ``decode="client"`` images are decoded and letterboxed here and sent as uint8 tiles to the
    attribute model (see :class:`ClientOptions`); several URLs spread a stream over servers.

    Example::

        with TagClient("127.0.0.1:8001") as client:
            attrs = client.tag(open("shirt.jpg", "rb").read())
            print(attrs["sleeve_length"].value)
    """

    def __init__(self, url: str = "127.0.0.1:8001", *, options: ClientOptions | None = None,
                 **kwargs) -> None:
        from tritonclient.grpc import InferenceServerClient

        self.options = options or ClientOptions(url=url, **kwargs)
        self._clients = [InferenceServerClient(**self.options.client_kwargs(u))
                         for u in self.options.urls]
        self._client = self._clients[0]  # metadata and single requests
        self._book = TaxonomyBook(self.options.experimental)
        self._preparer: Preparer | None = None

    # ----------------------------------------------------------------- server
    def is_ready(self) -> bool:
        """True when every endpoint is ready to serve the model requests go to."""
        try:
            return all(c.is_server_ready() and c.is_model_ready(self.options.served_model)
                       for c in self._clients)
        except Exception:
            return False

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.is_ready():
            if time.monotonic() > deadline:
                raise ClientError(f"model {self.options.model!r} at {self.options.url} not ready "
                                  f"after {timeout_s:.0f} s")
            time.sleep(0.2)

    @property
    def taxonomy(self) -> Taxonomy:
        """The taxonomy of the model version currently served (as last read)."""
        if self._book.current is None:
            self.refresh_taxonomy()
        return self._book.current

    def refresh_taxonomy(self) -> Taxonomy:
        """Re-read the served taxonomies (the current one and those of other versions on disk)."""
        model = self.options.served_model
        try:
            config = config_json(self._client.get_model_config(model, as_json=True))
            source = taxonomy_source(config)
            holder = config if source is None else config_json(
                self._client.get_model_config(source, as_json=True))
        except Exception as exc:
            raise translate(exc) from None
        return self._book.load(config, holder, source or model)

    def _decode(self, result) -> list[AttributeSet]:
        try:
            return self._book.decode(result)
        except UnknownTaxonomyError:  # a version this client has not seen: read again, once
            self.refresh_taxonomy()
            return self._book.decode(result)

    @property
    def preparer(self) -> Preparer:
        """How items become requests; for client-side decoding, built from the server's spec."""
        if self._preparer is None:
            try:
                config = self._client.get_model_config(PREPROCESS_MODEL, as_json=True)
            except Exception as exc:
                if self.options.decode == "client" or translate(exc).retryable:
                    raise translate(exc) from None
                config = None  # server-side decoding works without it: default read limits
            self._preparer = preparer_from_config(self.options.decode, config)
        return self._preparer

    # ----------------------------------------------------------------- tagging
    def _infer(self, images: list[bytes]):
        prepare = self.preparer
        payloads = [prepare(image, i)[1] for i, image in enumerate(images)]
        try:
            return self._client.infer(self.options.served_model, prepare.inputs(payloads),
                                      outputs=requested_outputs(self._book.with_ids),
                                      client_timeout=self.options.timeout_s)
        except Exception as exc:
            raise translate(exc) from None

    def tag(self, image: bytes) -> AttributeSet:
        """One encoded image → its attribute set; raises a :class:`ClientError` subclass."""
        return self.tag_batch([image])[0]

    def tag_batch(self, images: list[bytes]) -> list[AttributeSet]:
        """Several images in one request: one bad image fails the whole request."""
        self.taxonomy  # noqa: B018 - read the taxonomy (and the outputs to ask for) first
        return self._decode(self._infer([bytes(b) for b in images]))

    def tag_many(self, items: Iterable[ImageItem], concurrency: int = 8) -> Iterator[TagResult]:
        """Results in input order, at most ``concurrency`` requests in flight; one result per item,
        with ``error`` set for images that failed (the stream goes on). No retries: see
        :meth:`tag_stream`."""
        return self.tag_stream(items, concurrency=concurrency, ordered=True, retries=0)

    def tag_stream(self, items: Iterable[ImageItem], *, concurrency: int = 16,
                   ordered: bool = True, retries: int = 8, backoff_s: float = 0.25,
                   max_backoff_s: float = 8.0, load_threads: int = 2) -> Iterator[TagResult]:
        """Tag an iterable of any length: exactly one :class:`TagResult` per item.

        Items are ``(id, bytes | path)`` pairs, or bare bytes/paths. At most ``concurrency``
        items are between being pulled from ``items`` and being yielded (reading, decoding,
        in flight, waiting to retry or, with ``ordered=True``, waiting for an earlier item), so
        memory stays flat whatever the catalog size and a slow consumer slows the reading.
        ``ordered=False`` yields results as they finish. Errors marked retryable (server down or
        restarting, queue full, deadline exceeded) are retried ``retries`` times with exponential
        back-off and jitter; bad inputs become error results, never exceptions. Files are read
        (and, with ``decode="client"``, decoded) on ``load_threads`` threads.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        policy = RetryPolicy(retries, backoff_s, max_backoff_s)
        self.taxonomy  # noqa: B018 - read the taxonomy (and the outputs to ask for) first
        prepare = self.preparer
        balancer = Balancer(len(self._clients), self.options.balance)
        return self._stream(iter(items), concurrency, ordered, policy, prepare, balancer,
                            max(1, load_threads))

    def _shared_memory(self, concurrency: int, prepare: Preparer):
        """One region per request in flight, when asked for (``shared_memory=True``)."""
        if not self.options.shared_memory:
            return None
        from fashiontag.client.shm import SharedMemoryPool

        size = prepare.spec.size
        return SharedMemoryPool(self._clients, concurrency, size * size * 3)

    def _stream(self, items: Iterator, concurrency: int, ordered: bool, policy: RetryPolicy,
                prepare: Preparer, balancer: Balancer, load_threads: int
                ) -> Iterator[TagResult]:
        # One thread (this generator) owns every decision; loaders and gRPC callbacks only post
        # events to `events`. Retries wait in `delayed` (a heap of due times) on the same loop.
        events: queue.SimpleQueue = queue.SimpleQueue()
        delayed: list = []
        tie = itertools.count()
        reorder = Reorderer() if ordered else None
        shm = self._shared_memory(concurrency, prepare)
        pool = ThreadPoolExecutor(load_threads, thread_name_prefix="fashiontag-load")
        active, index, exhausted = 0, 0, False
        try:
            while True:
                while active < concurrency and not exhausted:
                    try:
                        item = next(items)
                    except StopIteration:
                        exhausted = True
                        break
                    task = _Task(index, item, time.perf_counter(), id=item_id(item, index))
                    index += 1
                    active += 1
                    pool.submit(self._load, task, prepare, events, shm is not None)
                if active == 0:
                    return
                wait = max(0.0, delayed[0][0] - time.monotonic()) if delayed else None
                try:
                    kind, task, payload = events.get(timeout=wait)
                except queue.Empty:
                    kind = None
                while delayed and delayed[0][0] <= time.monotonic():
                    self._send(heapq.heappop(delayed)[2], balancer, events, shm)
                if kind == "loaded":
                    self._send(task, balancer, events, shm)
                    continue
                if kind == "reply":
                    result, error = payload
                    if error is not None:
                        error = translate(error)
                        if policy.should_retry(error, task.attempts):
                            due = time.monotonic() + policy.delay(task.attempts)
                            heapq.heappush(delayed, (due, next(tie), task))
                            continue
                    # decoded here, on the consumer's thread: an unknown taxonomy id re-reads
                    # the configs, a blocking call that must not run on a gRPC callback thread
                    payload = to_result(task.id, result, error, self._decode, task.started)
                elif kind is None:
                    continue
                payload.attempts = max(1, task.attempts)
                ready = reorder.push(task.index, payload) if reorder is not None else [payload]
                for done in ready:
                    active -= 1
                    yield done
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            if shm is not None:
                # a consumer that stopped early leaves requests in flight: close() waits for
                # their answers (or their deadlines) before it unregisters the regions
                shm.close(drain_timeout_s=self.options.timeout_s + 5.0)

    @staticmethod
    def _load(task: _Task, prepare: Preparer, events: queue.SimpleQueue,
              shared_memory: bool = False) -> None:
        try:
            task.id, payload = prepare(task.item, task.index)
            if shared_memory:
                task.tile = payload
            else:
                task.inputs = prepare.inputs([payload])
        except ClientError as exc:
            events.put(("done", task, to_result(task.id, None, exc, None, task.started)))
            return
        except Exception as exc:  # a loader bug must still end in exactly one result
            events.put(("done", task, to_result(task.id, None, ClientError(
                f"could not prepare item: {exc}"), None, task.started)))
            return
        finally:
            task.item = None  # the payload lives in task.inputs now; drop the raw item
        events.put(("loaded", task, None))

    def _send(self, task: _Task, balancer: Balancer, events: queue.SimpleQueue,
              shm=None) -> None:
        endpoint = balancer.acquire()
        task.endpoint, task.attempts = endpoint, task.attempts + 1
        region = None

        def done(result=None, error=None) -> None:  # called by keyword, on a gRPC thread
            try:
                balancer.release(endpoint, error is not None and translate(error).retryable)
                if region is not None:  # the server has read the input: the region is free
                    shm.release(region)
            finally:  # whatever happens, the stream must hear back or it would wait forever
                events.put(("reply", task, (result, error)))

        try:
            inputs = task.inputs
            if shm is not None:
                region = shm.acquire()
                inputs = shm.inputs(region, task.tile)
            self._clients[endpoint].async_infer(self.options.served_model, inputs, done,
                                                outputs=requested_outputs(self._book.with_ids),
                                                client_timeout=self.options.timeout_s)
        except Exception as exc:
            done(None, exc)

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        for client in self._clients:
            client.close()

    def __enter__(self) -> TagClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

