"""Blocking gRPC client: ``tag`` one image, ``tag_many`` a stream with bounded concurrency."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future

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

__all__ = ["TagClient"]


class TagClient:
    """Tags images through the ``fashiontag`` ensemble over gRPC.

    The taxonomy is read from the served model's config on first use and re-read when a response
    comes from a model version this client does not know yet (a hot reload), so labels always
    come from the model version that answered.

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
        self._book = TaxonomyBook()

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
        """The taxonomy of the model version currently served (as last read)."""
        if self._book.current is None:
            self.refresh_taxonomy()
        return self._book.current

    def refresh_taxonomy(self) -> Taxonomy:
        """Re-read the served taxonomies (the current one and those of other versions on disk)."""
        try:
            config = config_json(self._client.get_model_config(self.options.model, as_json=True))
            source = taxonomy_source(config)
            holder = config if source is None else config_json(
                self._client.get_model_config(source, as_json=True))
        except Exception as exc:
            raise translate(exc) from None
        return self._book.load(config, holder, source or self.options.model)

    def _decode(self, result) -> list[AttributeSet]:
        try:
            return self._book.decode(result)
        except UnknownTaxonomyError:  # a version this client has not seen: read again, once
            self.refresh_taxonomy()
            return self._book.decode(result)

    # ----------------------------------------------------------------- tagging
    def _infer(self, images: list[bytes]):
        try:
            return self._client.infer(self.options.model, image_inputs(images),
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
        with ``error`` set for images that failed (the stream goes on)."""
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.taxonomy  # noqa: B018
        pending: deque[tuple[str, float, Future]] = deque()
        for index, item in enumerate(items):
            pending.append(self._submit(index, item))
            while len(pending) >= concurrency:
                yield self._finish(*pending.popleft())
        while pending:
            yield self._finish(*pending.popleft())

    def _submit(self, index: int, item: ImageItem) -> tuple[str, float, Future]:
        """Send one request; the future holds ``(result, error, finished_at)``. Decoding happens
        in the caller's thread (it may need to re-read the taxonomy, a blocking call)."""
        future: Future = Future()
        started = time.perf_counter()
        item_id = str(index)
        try:
            item_id, data = normalise_item(item, index)
            inputs = image_inputs([data])
        except ClientError as exc:
            future.set_result((None, exc, time.perf_counter()))
            return item_id, started, future

        def done(result, error) -> None:
            future.set_result((result, error, time.perf_counter()))

        try:
            self._client.async_infer(self.options.model, inputs, done,
                                     outputs=requested_outputs(self._book.with_ids),
                                     client_timeout=self.options.timeout_s)
        except Exception as exc:
            future.set_result((None, exc, time.perf_counter()))
        return item_id, started, future

    def _finish(self, item_id: str, started: float, future: Future) -> TagResult:
        result, error, ended = future.result()
        return to_result(item_id, result, error, self._decode, started, ended)

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> TagClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
