"""asyncio gRPC client: the twin of :class:`fashiontag.client.TagClient`, same method names."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable

from fashiontag.client._common import (
    ClientOptions,
    ImageItem,
    TaxonomyBook,
    UnknownTaxonomyError,
    config_json,
    image_inputs,
    normalise_item,
    requested_outputs,
    taxonomy_source,
    to_result,
)
from fashiontag.client.errors import ClientError, translate
from fashiontag.client.results import AttributeSet, TagResult
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
        self._client = InferenceServerClient(**self.options.client_kwargs())
        self._book = TaxonomyBook()

    async def is_ready(self) -> bool:
        try:
            return bool(await self._client.is_server_ready()
                        and await self._client.is_model_ready(self.options.model))
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
        try:
            config = config_json(await self._client.get_model_config(self.options.model,
                                                                      as_json=True))
            source = taxonomy_source(config)
            holder = config if source is None else config_json(
                await self._client.get_model_config(source, as_json=True))
        except Exception as exc:
            raise translate(exc) from None
        return self._book.load(config, holder, source or self.options.model)

    async def _decode(self, result) -> list[AttributeSet]:
        try:
            return self._book.decode(result)
        except UnknownTaxonomyError:
            await self.refresh_taxonomy()
            return self._book.decode(result)

    async def _infer(self, images: list[bytes]):
        try:
            return await self._client.infer(self.options.model, image_inputs(images),
                                            outputs=requested_outputs(self._book.with_ids),
                                            client_timeout=self.options.timeout_s)
        except Exception as exc:
            raise translate(exc) from None

    async def tag(self, image: bytes) -> AttributeSet:
        return (await self.tag_batch([image]))[0]

    async def tag_batch(self, images: list[bytes]) -> list[AttributeSet]:
        await self.taxonomy()
        return await self._decode(await self._infer([bytes(b) for b in images]))

    async def _one(self, index: int, item: ImageItem) -> TagResult:
        started = time.perf_counter()
        item_id = str(index)
        try:
            item_id, data = normalise_item(item, index)
            result = await self._client.infer(self.options.model, image_inputs([data]),
                                              outputs=requested_outputs(self._book.with_ids),
                                              client_timeout=self.options.timeout_s)
        except Exception as exc:
            return to_result(item_id, None, exc, self._book.decode, started)
        ended = time.perf_counter()
        try:
            attributes = await self._decode(result)
        except Exception as exc:  # still one record per image, never an exception mid-stream
            return to_result(item_id, None, exc, self._book.decode, started, ended)
        return to_result(item_id, result, None, lambda _: attributes, started, ended)

    async def tag_many(self, items: Iterable[ImageItem] | AsyncIterable[ImageItem],
                       concurrency: int = 8) -> AsyncIterator[TagResult]:
        """Results in input order with at most ``concurrency`` requests in flight."""
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        await self.taxonomy()
        pending: deque[asyncio.Task] = deque()
        index = 0
        async for item in _aiter(items):
            pending.append(asyncio.ensure_future(self._one(index, item)))
            index += 1
            while len(pending) >= concurrency:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()

    async def close(self) -> None:
        await self._client.close()

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
