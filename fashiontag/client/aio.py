"""asyncio gRPC client: the twin of :class:`fashiontag.client.TagClient`, same method names."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable

from fashiontag.client._common import (
    ClientOptions,
    ImageItem,
    decode_result,
    image_inputs,
    normalise_item,
    requested_outputs,
    taxonomy_from_config,
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
        self._taxonomy: Taxonomy | None = None

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
        if self._taxonomy is None:
            await self.refresh_taxonomy()
        return self._taxonomy

    async def refresh_taxonomy(self) -> Taxonomy:
        try:
            config = await self._client.get_model_config(self.options.model, as_json=True)
        except Exception as exc:
            raise translate(exc) from None
        self._taxonomy = taxonomy_from_config(config, self.options.model)
        return self._taxonomy

    async def _infer(self, images: list[bytes]):
        try:
            return await self._client.infer(self.options.model, image_inputs(images),
                                            outputs=requested_outputs(),
                                            client_timeout=self.options.timeout_s)
        except Exception as exc:
            raise translate(exc) from None

    async def tag(self, image: bytes) -> AttributeSet:
        return (await self.tag_batch([image]))[0]

    async def tag_batch(self, images: list[bytes]) -> list[AttributeSet]:
        taxonomy = await self.taxonomy()
        result = await self._infer([bytes(b) for b in images])
        try:
            return decode_result(result, taxonomy)
        except ValueError:
            return decode_result(result, await self.refresh_taxonomy())

    async def _one(self, index: int, item: ImageItem, taxonomy: Taxonomy) -> TagResult:
        started = time.perf_counter()
        item_id = str(index)
        try:
            item_id, data = normalise_item(item, index)
            result = await self._client.infer(self.options.model, image_inputs([data]),
                                              outputs=requested_outputs(),
                                              client_timeout=self.options.timeout_s)
        except Exception as exc:
            return to_result(item_id, None, exc, taxonomy, started)
        return to_result(item_id, result, None, taxonomy, started)

    async def tag_many(self, items: Iterable[ImageItem] | AsyncIterable[ImageItem],
                       concurrency: int = 8) -> AsyncIterator[TagResult]:
        """Results in input order with at most ``concurrency`` requests in flight."""
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        taxonomy = await self.taxonomy()
        pending: deque[asyncio.Task] = deque()
        index = 0
        async for item in _aiter(items):
            pending.append(asyncio.ensure_future(self._one(index, item, taxonomy)))
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
