"""What the sync and asyncio clients share: options, input normalisation, request building and
response decoding. The two clients only differ in how they wait.

Taxonomies: the served model's config says where its taxonomy lives (the ensemble's
``taxonomy_model`` parameter names the attributes model, whose config carries the current
taxonomy and those of every version on disk). Each response carries the ``TAXONOMY_ID`` of the
version that computed it, so during a hot reload a client decodes old-version and new-version
responses each with their own labels (:class:`TaxonomyBook`); an unknown id triggers one re-read.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fashiontag.client.defaults import DECODE_MODES, DEFAULT_DECODE, DEFAULT_TIMEOUT_S
from fashiontag.client.errors import (
    ClientError,
    IncompatibleModelError,
    InvalidImageError,
    ModelNotReadyError,
    UnknownTaxonomyError,
    translate,
)
from fashiontag.client.remote import RemoteReader, is_url
from fashiontag.client.results import AttributeSet, TagResult, decode_probabilities
from fashiontag.errors import ImageDecodeError
from fashiontag.images import (
    DEFAULT_LIMITS,
    DEFAULT_SPEC,
    DecodeLimits,
    PreprocessSpec,
    preprocess_bytes,
)
from fashiontag.protocol import (
    ATTRIBUTES_MODEL,
    ENSEMBLE_MODEL,
    IMAGE,
    LIMITS_PARAMETER,
    PIXELS,
    PREPROCESS_PARAMETER,
    PROBABILITIES,
    TAXONOMY_HISTORY_PARAMETER,
    TAXONOMY_ID,
    TAXONOMY_MODEL_PARAMETER,
    TAXONOMY_PARAMETER,
)
from fashiontag.taxonomy import Taxonomy, TaxonomyError

__all__ = ["ClientOptions", "GRPC_SCHEMES", "ImageItem", "Preparer", "item_id", "normalise_item",
           "image_inputs", "split_urls", "pixel_inputs", "preparer_from_config",
           "taxonomy_from_config", "to_result",
           "DECODE_MODES", "TaxonomyBook", "UnknownTaxonomyError", "taxonomy_source"]

# gRPC's default reconnect back-off grows to 120 s; a restarted server should be found in ~1 s.
_RECONNECT_ARGS = [("grpc.initial_reconnect_backoff_ms", 250),
                   ("grpc.min_reconnect_backoff_ms", 250),
                   ("grpc.max_reconnect_backoff_ms", 2000)]

# A target that resolves to several addresses (a headless Kubernetes Service behind
# ``dns:///name:8001``, or ``ipv4:a:p,b:p``) spreads requests over all of them; the default
# pick_first would pin every request of a channel to one replica. A name is re-resolved when a
# connection closes (the server's max connection age), at most once a second instead of gRPC's
# 30 s, so replicas added since are found within a connection age.
_BALANCING_ARGS = [("grpc.lb_policy_name", "round_robin"),
                   ("grpc.dns_min_time_between_resolutions_ms", 1000)]

#: gRPC resolver schemes: a URL starting with one is a single channel target, commas included.
GRPC_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:")


def split_urls(text: str) -> tuple[str, ...]:
    """``"a:1,b:2"`` → two servers; a gRPC target with a scheme (``dns:///svc:8001``,
    ``ipv4:10.0.0.1:8001,10.0.0.2:8001``) stays one URL, whose addresses gRPC balances."""
    text = text.strip()
    if text.startswith(GRPC_SCHEMES):
        return (text,)
    return tuple(u.strip() for u in text.split(",") if u.strip())

#: What ``tag_many`` accepts per item: bytes, a path, or ``(id, bytes | path)``.
ImageItem = bytes | bytearray | memoryview | str | Path | tuple


@dataclass(frozen=True)
class ClientOptions:
    """``url`` may name several servers (a sequence, or ``"host:port,host:port"``); streams then
    spread requests over them (``balance``: ``"least_loaded"`` or ``"round_robin"``). One URL
    may also be a gRPC target that resolves to several replicas (``dns:///fashiontag:8001`` on a
    headless Service): gRPC's round_robin then spreads that channel's requests over them."""

    url: str | Sequence[str] = "127.0.0.1:8001"
    model: str = ENSEMBLE_MODEL  # takes encoded images (decode="server")
    timeout_s: float = DEFAULT_TIMEOUT_S  # per request, enforced by the client
    ssl: bool = False
    root_certificates: str | None = None  # CA bundle (PEM path) to verify the server
    private_key: str | None = None  # client key (PEM path), for mutual TLS
    certificate_chain: str | None = None  # client certificate (PEM path), for mutual TLS
    decode: str = DEFAULT_DECODE  # see DECODE_MODES
    pixels_model: str = ATTRIBUTES_MODEL  # takes uint8 tiles (decode="client")
    balance: str = "least_loaded"
    # also report attributes the taxonomy marks experimental (never validated on real photos)
    experimental: bool = False
    # streams pass tiles through Triton's system shared memory (decode="client", same host)
    shared_memory: bool = False

    def __post_init__(self) -> None:
        if self.decode not in DECODE_MODES:
            raise ValueError(f"decode must be one of {DECODE_MODES}, got {self.decode!r}")
        if self.shared_memory and self.decode != "client":
            raise ValueError("shared_memory carries decoded tiles: it needs decode='client'")
        if self.balance not in ("least_loaded", "round_robin"):
            raise ValueError(f"balance must be least_loaded or round_robin, got {self.balance!r}")
        if not self.urls:
            raise ValueError("at least one server URL is needed")
        if self.shared_memory and any(u.startswith(GRPC_SCHEMES) for u in self.urls):
            raise ValueError("shared_memory registers regions on one server per URL: give "
                             "host:port URLs, not a balanced gRPC target")

    @property
    def urls(self) -> tuple[str, ...]:
        """One entry per channel; see :func:`split_urls`."""
        parts = [self.url] if isinstance(self.url, str) else list(self.url)
        return tuple(u for part in parts if part for u in split_urls(part))

    @property
    def served_model(self) -> str:
        """The model requests go to: the ensemble, or the attribute model for client decode."""
        return self.model if self.decode == "server" else self.pixels_model

    def client_kwargs(self, url: str | None = None) -> dict[str, Any]:
        from tritonclient.grpc import KeepAliveOptions
        from tritonclient.grpc._client import MAX_GRPC_MESSAGE_SIZE

        keepalive = KeepAliveOptions()
        channel_args = [
            ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
            ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
            ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
            ("grpc.keepalive_permit_without_calls", keepalive.keepalive_permit_without_calls),
            ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
            *_RECONNECT_ARGS,
            *_BALANCING_ARGS,
        ]
        kwargs: dict[str, Any] = {"url": url or self.urls[0], "channel_args": channel_args}
        if self.ssl:
            kwargs.update(ssl=True, root_certificates=self.root_certificates,
                          private_key=self.private_key, certificate_chain=self.certificate_chain)
        return kwargs


def item_id(item: ImageItem, index: int) -> str:
    """The id a result will carry: ``id`` of an ``(id, image)`` pair, a path, or the index."""
    if isinstance(item, tuple) and len(item) == 2:
        return str(item[0])
    return str(item) if isinstance(item, (str, Path)) else str(index)


def normalise_item(item: ImageItem, index: int) -> tuple[str, bytes]:
    """→ ``(id, encoded bytes)``; raises :class:`InvalidImageError` for unreadable inputs."""
    if isinstance(item, tuple):
        if len(item) != 2:
            raise InvalidImageError(f"item {index}: expected (id, image), got a {len(item)}-tuple")
        payload = item[1]
    else:
        payload = item
    identity = item_id(item, index)
    if isinstance(payload, (str, Path)):
        try:
            payload = Path(payload).read_bytes()
        except OSError as exc:
            raise InvalidImageError(f"cannot read {payload}: {exc.strerror or exc}") from None
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise InvalidImageError(f"item {identity}: expected bytes or a path, "
                                f"got {type(payload).__name__}")
    return identity, bytes(payload)


def image_inputs(images: list[bytes]) -> list:
    """A request for the ensemble: a BYTES tensor ``[len(images), 1]`` of encoded images."""
    from tritonclient.grpc import InferInput

    if any(len(b) == 0 for b in images):
        raise InvalidImageError("empty input: 0 bytes")
    tensor = InferInput(IMAGE, [len(images), 1], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_).reshape(-1, 1))
    return [tensor]


def pixel_inputs(tiles: list[np.ndarray] | np.ndarray) -> list:
    """A request for the attribute model: a UINT8 tensor ``[N, size, size, 3]`` of tiles."""
    from tritonclient.grpc import InferInput

    batch = tiles if isinstance(tiles, np.ndarray) else np.stack(tiles)
    tensor = InferInput(PIXELS, list(batch.shape), "UINT8")
    tensor.set_data_from_numpy(np.ascontiguousarray(batch, dtype=np.uint8))
    return [tensor]


_REMOTE = RemoteReader()  # images given as URLs: timeouts, retries, byte limit


def read_limited(path: str | Path, max_bytes: int) -> bytes:
    """Read a file, refusing (before reading) one larger than the server would accept; a URL
    (``https://``, ``s3://``...) is read by :class:`~fashiontag.client.remote.RemoteReader`
    under the same limit."""
    if is_url(path):
        return _REMOTE.read(path, max_bytes)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise InvalidImageError(f"{path} is {size} bytes, above the limit of {max_bytes}")
            return f.read()
    except OSError as exc:
        raise InvalidImageError(f"cannot read {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Preparer:
    """Turns one input item into a request payload: encoded bytes (``decode="server"``) or a
    letterboxed uint8 tile made by :func:`fashiontag.images.preprocess_bytes` (``"client"``).

    Raises :class:`InvalidImageError` for items that cannot become a request, so the caller can
    report them per item without asking the server.
    """

    decode: str = DEFAULT_DECODE
    spec: PreprocessSpec = DEFAULT_SPEC
    limits: DecodeLimits = DEFAULT_LIMITS

    def __call__(self, item: ImageItem, index: int) -> tuple[str, bytes | np.ndarray]:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], (str, Path)):
            item = (item[0], read_limited(item[1], self.limits.max_bytes))
        elif isinstance(item, (str, Path)):
            item = (str(item), read_limited(item, self.limits.max_bytes))
        identity, data = normalise_item(item, index)
        if not data:
            raise InvalidImageError("empty input: 0 bytes")
        if self.decode == "server":
            return identity, data
        try:
            return identity, preprocess_bytes(data, self.spec, self.limits)
        except ImageDecodeError as exc:
            raise InvalidImageError(str(exc)) from None

    def inputs(self, payloads: list) -> list:
        """The one place a request is built from prepared payloads."""
        return image_inputs(payloads) if self.decode == "server" else pixel_inputs(payloads)


def preparer_from_config(decode: str, config: dict | None) -> Preparer:
    """A :class:`Preparer` using the preprocessing spec and decode limits the server declares
    (the preprocess model's config, generated from the ONNX metadata), so client-side decoding
    makes exactly the tiles the server would make."""
    if config is None:
        if decode == "client":
            raise IncompatibleModelError(
                "client-side decoding needs the server's preprocessing spec (the preprocess "
                "model's config) and could not read it; try decode='server'")
        return Preparer(decode)
    params = config.get("config", config).get("parameters", {})
    try:
        spec = PreprocessSpec.from_dict(json.loads(params[PREPROCESS_PARAMETER]["string_value"]))
        limits_text = params.get(LIMITS_PARAMETER, {}).get("string_value", "{}")
        limits = DecodeLimits(**json.loads(limits_text))
    except (KeyError, TypeError, ValueError) as exc:
        raise IncompatibleModelError(
            f"unreadable preprocessing spec in the server's config: {exc}") from None
    return Preparer(decode, spec, limits)


def requested_outputs(with_ids: bool = False) -> list:
    from tritonclient.grpc import InferRequestedOutput

    names = [PROBABILITIES, TAXONOMY_ID] if with_ids else [PROBABILITIES]
    return [InferRequestedOutput(n) for n in names]


def _parameter(config: dict, key: str) -> str | None:
    cfg = config.get("config", config)
    return cfg.get("parameters", {}).get(key, {}).get("string_value") or None


def taxonomy_source(config: dict) -> str | None:
    """The model whose config holds the taxonomy, when it is not this one (an ensemble)."""
    return _parameter(config, TAXONOMY_MODEL_PARAMETER)


def taxonomy_from_config(config: dict, model: str) -> Taxonomy:
    """Read the taxonomy the server's model config carries (generated from the ONNX metadata)."""
    text = _parameter(config, TAXONOMY_PARAMETER)
    if not text:
        raise IncompatibleModelError(f"model {model!r} has no {TAXONOMY_PARAMETER!r} "
                                     "parameter: it is not a fashiontag model")
    try:
        return Taxonomy.from_json(text)
    except TaxonomyError as exc:
        raise IncompatibleModelError(f"model {model!r} carries an unreadable taxonomy: {exc}"
                                     ) from None


class TaxonomyBook:
    """Every taxonomy the served model may answer with, by :attr:`Taxonomy.id`; plus the current.

    Filled from model configs by :meth:`load`; :meth:`decode` picks the taxonomy per response.
    """

    def __init__(self, experimental: bool = False) -> None:
        self.current: Taxonomy | None = None
        self.by_id: dict[int, Taxonomy] = {}
        self.with_ids = False  # does the served model return TAXONOMY_ID?
        self.experimental = experimental  # decode experimental attributes too

    def load(self, model_config: dict, taxonomy_config: dict, model: str) -> Taxonomy:
        current = taxonomy_from_config(taxonomy_config, model)
        history = _parameter(taxonomy_config, TAXONOMY_HISTORY_PARAMETER)
        known = [current]
        if history:
            try:
                known += [Taxonomy.from_dict(t) for t in json.loads(history)]
            except (TaxonomyError, ValueError, KeyError, TypeError) as exc:
                raise IncompatibleModelError(f"model {model!r} carries unreadable taxonomies: "
                                             f"{exc}") from None
        for taxonomy in known:
            self.by_id[taxonomy.id] = taxonomy
        outputs = model_config.get("config", model_config).get("output", [])
        self.with_ids = any(o.get("name") == TAXONOMY_ID for o in outputs)
        self.current = current
        return current

    def decode(self, result) -> list[AttributeSet]:
        """A response → attribute sets with the labels of the version that answered.

        Raises :class:`UnknownTaxonomyError` when the id (or, for models without ids, the
        width) matches no known taxonomy: re-read the configs and try again.
        """
        probabilities = result.as_numpy(PROBABILITIES)
        taxonomy = self.current
        if self.with_ids:
            ids = result.as_numpy(TAXONOMY_ID)
            if ids is not None and ids.size:
                taxonomy = self.by_id.get(int(ids.reshape(-1)[0]))
        width = probabilities.shape[-1] if probabilities is not None else -1
        if taxonomy is None or taxonomy.total_values != width:
            raise UnknownTaxonomyError(
                f"the served model answered with {width} values "
                f"(taxonomy id {self._id_of(result)}), which no known taxonomy matches")
        return decode_probabilities(taxonomy, probabilities, self.experimental)

    def _id_of(self, result) -> int | None:
        try:
            return int(result.as_numpy(TAXONOMY_ID).reshape(-1)[0]) if self.with_ids else None
        except Exception:
            return None


def model_identity(result) -> tuple[str | None, str | None]:
    try:
        response = result.get_response()
        return response.model_name, response.model_version
    except Exception:  # an identity is nice to have, never worth failing a result for
        return None, None


def to_result(item_id: str, result, error: Exception | None,
              decode: Callable[[Any], list[AttributeSet]] | None, started: float,
              ended: float | None = None) -> TagResult:
    """A response or an error → :class:`TagResult` (errors become per-image records)."""
    latency = ((ended or time.perf_counter()) - started) * 1000.0
    if error is not None:
        err = translate(error)
        return TagResult(item_id, error=str(err), error_type=type(err).__name__,
                         latency_ms=latency)
    try:
        attributes = decode(result)[0]
    except (ValueError, ClientError) as exc:
        # a permanent error keeps its own type (written as failed); a response the client
        # could not decode yet (e.g. mid hot reload) stays a retryable ModelNotReadyError
        kind = type(exc).__name__ if isinstance(exc, ClientError) and not exc.retryable \
            else ModelNotReadyError.__name__
        return TagResult(item_id, error=str(exc), error_type=kind, latency_ms=latency)
    name, version = model_identity(result)
    return TagResult(item_id, attributes=attributes, model=name, model_version=version,
                     latency_ms=latency)


def config_json(raw) -> dict:
    return raw if isinstance(raw, dict) else json.loads(raw)
