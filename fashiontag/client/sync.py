"""Blocking gRPC client: ``tag`` one image, ``tag_many`` a stream with bounded concurrency."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future

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

__all__ = ["TagClient"]


class TagClient:
    """Tags images through the ``fashiontag`` ensemble over gRPC.

    The taxonomy is read from the served model's config on first use (and re-read when the served
    model's output no longer matches it), so labels always come from the model being served.

    Example::

        with TagClient("127.0.0.1:8001") as client:
            attrs = client.tag(open("shirt.jpg", "rb").read())
            print(attrs["sleeve_length"].value)
    """

    def __init__(self, url: str = "127.0.0.1:8001", *, options: ClientOptions | None = None,
                 **kwargs) -> None:
        from tritonclient.grpc import InferenceServerClient

        self.options = options or ClientOptions(url=url, **kwargs)
        self._client = InferenceServerClient(**self.options.client_kwargs())
        self._taxonomy: Taxonomy | None = None

    # ----------------------------------------------------------------- server
    def is_ready(self) -> bool:
        try:
            return bool(self._client.is_server_ready()
                        and self._client.is_model_ready(self.options.model))
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
        if self._taxonomy is None:
            self.refresh_taxonomy()
        return self._taxonomy

    def refresh_taxonomy(self) -> Taxonomy:
        try:
            config = self._client.get_model_config(self.options.model, as_json=True)
        except Exception as exc:
            raise translate(exc) from None
        self._taxonomy = taxonomy_from_config(config, self.options.model)
        return self._taxonomy

    # ----------------------------------------------------------------- tagging
    def _infer(self, images: list[bytes]):
        try:
            return self._client.infer(self.options.model, image_inputs(images),
                                      outputs=requested_outputs(),
                                      client_timeout=self.options.timeout_s)
        except Exception as exc:
            raise translate(exc) from None

    def tag(self, image: bytes) -> AttributeSet:
        """One encoded image → its attribute set; raises a :class:`ClientError` subclass."""
        return self.tag_batch([image])[0]

    def tag_batch(self, images: list[bytes]) -> list[AttributeSet]:
        """Several images in one request: one bad image fails the whole request."""
        taxonomy = self.taxonomy
        result = self._infer([bytes(b) for b in images])
        try:
            return decode_result(result, taxonomy)
        except ValueError:  # the served model changed its taxonomy under us
            return decode_result(result, self.refresh_taxonomy())

    def tag_many(self, items: Iterable[ImageItem], concurrency: int = 8) -> Iterator[TagResult]:
        """Results in input order, at most ``concurrency`` requests in flight; one result per item,
        with ``error`` set for images that failed (the stream goes on)."""
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        taxonomy = self.taxonomy
        pending: deque[Future] = deque()
        for index, item in enumerate(items):
            pending.append(self._submit(index, item, taxonomy))
            while len(pending) >= concurrency:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def _submit(self, index: int, item: ImageItem, taxonomy: Taxonomy) -> Future:
        future: Future = Future()
        started = time.perf_counter()
        item_id = str(index)
        try:
            item_id, data = normalise_item(item, index)
            inputs = image_inputs([data])
        except ClientError as exc:
            future.set_result(to_result(item_id, None, exc, taxonomy, started))
            return future

        def done(result, error) -> None:
            future.set_result(to_result(item_id, result, error, taxonomy, started))

        try:
            self._client.async_infer(self.options.model, inputs, done,
                                     outputs=requested_outputs(),
                                     client_timeout=self.options.timeout_s)
        except Exception as exc:
            future.set_result(to_result(item_id, None, exc, taxonomy, started))
        return future

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> TagClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

