"""asyncio gRPC client: the twin of :class:`fashiontag.client.TagClient`, same method names."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor

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

__all__ = ["AsyncTagClient"]


class AsyncTagClient:
    """Example::

        async with AsyncTagClient("127.0.0.1:8001") as client:
            async for result in client.tag_many(paths, concurrency=16):
                print(result.id, result.attributes or result.error)
    """

    def __init__(self, url: str = "127.0.0.1:8001", *, options: ClientOptions | None = None,
                 **kwargs) -> None:
        from tritonclient.grpc.aio import InferenceServerClient

        self.options = options or ClientOptions(url=url, **kwargs)
        if self.options.shared_memory:
            raise ValueError("shared_memory is a TagClient (sync) stream feature; the asyncio "
                             "client sends tiles over gRPC")
        self._clients = [InferenceServerClient(**self.options.client_kwargs(u))
                         for u in self.options.urls]
        self._client = self._clients[0]  # metadata and single requests
        self._book = TaxonomyBook(self.options.experimental)
        self._preparer: Preparer | None = None

    async def is_ready(self) -> bool:
        """True when every endpoint is ready to serve the model requests go to."""
        try:
            for client in self._clients:
                if not (await client.is_server_ready()
                        and await client.is_model_ready(self.options.served_model)):
                    return False
            return True
        except Exception:
            return False

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not await self.is_ready():
            if time.monotonic() > deadline:
                raise ClientError(f"model {self.options.model!r} at {self.options.url} not ready "
                                  f"after {timeout_s:.0f} s")
            await asyncio.sleep(0.2)

    async def taxonomy(self) -> Taxonomy:
        """The taxonomy of the model version currently served (as last read)."""
        if self._book.current is None:
            await self.refresh_taxonomy()
        return self._book.current

    async def refresh_taxonomy(self) -> Taxonomy:
        """Re-read the served taxonomies (the current one and those of other versions on disk)."""
        model = self.options.served_model
        try:
            config = config_json(await self._client.get_model_config(model, as_json=True))
            source = taxonomy_source(config)
            holder = config if source is None else config_json(
                await self._client.get_model_config(source, as_json=True))
        except Exception as exc:
            raise translate(exc) from None
        return self._book.load(config, holder, source or model)

    async def _decode(self, result) -> list[AttributeSet]:
        try:
            return self._book.decode(result)
        except UnknownTaxonomyError:  # a version this client has not seen: read again, once
            await self.refresh_taxonomy()
            return self._book.decode(result)

    async def preparer(self) -> Preparer:
        """How items become requests; for client-side decoding, built from the server's spec."""
        if self._preparer is None:
            try:
                config = await self._client.get_model_config(PREPROCESS_MODEL, as_json=True)
            except Exception as exc:
                if self.options.decode == "client" or translate(exc).retryable:
                    raise translate(exc) from None
                config = None  # server-side decoding works without it: default read limits
            self._preparer = preparer_from_config(self.options.decode, config)
        return self._preparer

    async def _infer(self, images: list[bytes]):
        prepare = await self.preparer()
        payloads = [prepare(image, i)[1] for i, image in enumerate(images)]
        try:
            return await self._client.infer(self.options.served_model, prepare.inputs(payloads),
                                            outputs=requested_outputs(self._book.with_ids),
                                            client_timeout=self.options.timeout_s)
        except Exception as exc:
            raise translate(exc) from None

    async def tag(self, image: bytes) -> AttributeSet:
        return (await self.tag_batch([image]))[0]

    async def tag_batch(self, images: list[bytes]) -> list[AttributeSet]:
        await self.taxonomy()
        return await self._decode(await self._infer([bytes(b) for b in images]))

    def tag_many(self, items: Iterable[ImageItem] | AsyncIterable[ImageItem],
                 concurrency: int = 8) -> AsyncIterator[TagResult]:
        """Results in input order with at most ``concurrency`` requests in flight; no retries."""
        return self.tag_stream(items, concurrency=concurrency, ordered=True, retries=0)

    async def tag_stream(self, items: Iterable[ImageItem] | AsyncIterable[ImageItem], *,
                         concurrency: int = 16, ordered: bool = True, retries: int = 8,
                         backoff_s: float = 0.25, max_backoff_s: float = 8.0,
                         load_threads: int = 2) -> AsyncIterator[TagResult]:
        """The twin of :meth:`TagClient.tag_stream` (same arguments and guarantees) over an
        iterable or async iterable: exactly one result per item, bounded memory, retries with
        back-off for retryable errors, per-item error results for bad inputs."""
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        policy = RetryPolicy(retries, backoff_s, max_backoff_s)
        await self.taxonomy()
        prepare = await self.preparer()
        balancer = Balancer(len(self._clients), self.options.balance)
        pool = ThreadPoolExecutor(max(1, load_threads), thread_name_prefix="fashiontag-load")
        reorder = Reorderer() if ordered else None
        pending: set[asyncio.Task] = set()
        source = _aiter(items).__aiter__()
        index, exhausted = 0, False
        try:
            while True:
                while len(pending) + len(reorder or ()) < concurrency and not exhausted:
                    try:
                        item = await source.__anext__()
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    pending.add(asyncio.ensure_future(self._one(
                        index, item, prepare, policy, balancer, pool)))
                    index += 1
                if not pending:
                    return
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for finished in sorted(done, key=lambda t: t.result()[0]):
                    position, result = finished.result()
                    for ready in (reorder.push(position, result) if reorder is not None
                                  else [result]):
                        yield ready
        finally:
            for task in pending:
                task.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    async def _one(self, index: int, item: ImageItem, prepare: Preparer, policy: RetryPolicy,
                   balancer: Balancer, pool: ThreadPoolExecutor) -> tuple[int, TagResult]:
        started = time.perf_counter()
        identity = item_id(item, index)
        try:
            identity, payload = await asyncio.get_running_loop().run_in_executor(
                pool, prepare, item, index)
            inputs = prepare.inputs([payload])
        except Exception as exc:  # bad input (or a loader bug): this item's result, not a crash
            error = exc if isinstance(exc, ClientError) else ClientError(
                f"could not prepare item: {exc}")
            return index, to_result(identity, None, error, None, started)
        del item, payload
        attempts = 0
        while True:
            endpoint = balancer.acquire()
            attempts += 1
            try:
                result = await self._clients[endpoint].infer(
                    self.options.served_model, inputs,
                    outputs=requested_outputs(self._book.with_ids),
                    client_timeout=self.options.timeout_s)
            except asyncio.CancelledError:
                balancer.release(endpoint)
                raise
            except Exception as exc:
                error = translate(exc)
                balancer.release(endpoint, error.retryable)
                if policy.should_retry(error, attempts):
                    await asyncio.sleep(policy.delay(attempts))
                    continue
                out = to_result(identity, None, error, None, started)
            else:
                balancer.release(endpoint)
                ended = time.perf_counter()
                try:
                    attributes = await self._decode(result)
                except Exception as exc:  # still one record per image, never an exception
                    out = to_result(identity, None, exc, None, started, ended)
                else:
                    out = to_result(identity, result, None, lambda _, a=attributes: a, started,
                                    ended)
            out.attempts = attempts
            return index, out

    async def close(self) -> None:
        for client in self._clients:
            await client.close()

    async def __aenter__(self) -> AsyncTagClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


async def _aiter(items: Iterable[ImageItem] | AsyncIterable[ImageItem]) -> AsyncIterator:
    if hasattr(items, "__aiter__"):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
