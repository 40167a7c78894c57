"""What the sync and asyncio clients share: options, input normalisation, request building and
response decoding. The two clients only differ in how they wait."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fashiontag.client.errors import ClientError, InvalidImageError, ModelNotReadyError, translate
from fashiontag.client.results import AttributeSet, TagResult, decode_probabilities
from fashiontag.protocol import ENSEMBLE_MODEL, IMAGE, PROBABILITIES, TAXONOMY_PARAMETER
from fashiontag.taxonomy import Taxonomy, TaxonomyError

__all__ = ["ClientOptions", "ImageItem", "normalise_item", "image_inputs", "taxonomy_from_config",
           "to_result"]

#: What ``tag_many`` accepts per item: bytes, a path, or ``(id, bytes | path)``.
ImageItem = bytes | bytearray | memoryview | str | Path | tuple


@dataclass(frozen=True)
class ClientOptions:
    url: str = "127.0.0.1:8001"
    model: str = ENSEMBLE_MODEL
    timeout_s: float = 30.0  # per request, enforced by the client
    ssl: bool = False
    root_certificates: str | None = None  # CA bundle (PEM path) to verify the server
    private_key: str | None = None  # client key (PEM path), for mutual TLS
    certificate_chain: str | None = None  # client certificate (PEM path), for mutual TLS

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"url": self.url}
        if self.ssl:
            kwargs.update(ssl=True, root_certificates=self.root_certificates,
                          private_key=self.private_key, certificate_chain=self.certificate_chain)
        return kwargs


def normalise_item(item: ImageItem, index: int) -> tuple[str, bytes]:
    """→ ``(id, encoded bytes)``; raises :class:`InvalidImageError` for unreadable inputs."""
    if isinstance(item, tuple):
        if len(item) != 2:
            raise InvalidImageError(f"item {index}: expected (id, image), got a {len(item)}-tuple")
        item_id, payload = str(item[0]), item[1]
    else:
        payload = item
        item_id = str(item) if isinstance(item, (str, Path)) else str(index)
    if isinstance(payload, (str, Path)):
        try:
            payload = Path(payload).read_bytes()
        except OSError as exc:
            raise InvalidImageError(f"cannot read {payload}: {exc.strerror or exc}") from None
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise InvalidImageError(f"item {item_id}: expected bytes or a path, "
                                f"got {type(payload).__name__}")
    return item_id, bytes(payload)


def image_inputs(images: list[bytes]) -> list:
    """The one place a request is built: a BYTES tensor ``[len(images), 1]``."""
    from tritonclient.grpc import InferInput

    if any(len(b) == 0 for b in images):
        raise InvalidImageError("empty input: 0 bytes")
    tensor = InferInput(IMAGE, [len(images), 1], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_).reshape(-1, 1))
    return [tensor]


def requested_outputs() -> list:
    from tritonclient.grpc import InferRequestedOutput

    return [InferRequestedOutput(PROBABILITIES)]


def taxonomy_from_config(config: dict, model: str) -> Taxonomy:
    """Read the taxonomy the server's model config carries (generated from the ONNX metadata)."""
    cfg = config.get("config", config)
    text = cfg.get("parameters", {}).get(TAXONOMY_PARAMETER, {}).get("string_value")
    if not text:
        raise ModelNotReadyError(f"model {model!r} has no {TAXONOMY_PARAMETER!r} parameter: "
                                 "it is not a fashiontag model")
    try:
        return Taxonomy.from_json(text)
    except TaxonomyError as exc:
        raise ModelNotReadyError(f"model {model!r} carries an unreadable taxonomy: {exc}") from None


def decode_result(result, taxonomy: Taxonomy) -> list[AttributeSet]:
    return decode_probabilities(taxonomy, result.as_numpy(PROBABILITIES))


def model_identity(result) -> tuple[str | None, str | None]:
    try:
        response = result.get_response()
        return response.model_name, response.model_version
    except Exception:  # an identity is nice to have, never worth failing a result for
        return None, None


def to_result(item_id: str, result, error: Exception | None, taxonomy: Taxonomy,
              started: float) -> TagResult:
    """A response or an error → :class:`TagResult` (errors become per-image records)."""
    latency = (time.perf_counter() - started) * 1000.0
    if error is not None:
        err = translate(error)
        return TagResult(item_id, error=str(err), error_type=type(err).__name__,
                         latency_ms=latency)
    try:
        attributes = decode_result(result, taxonomy)[0]
    except (ValueError, ClientError) as exc:
        return TagResult(item_id, error=str(exc), error_type="ModelNotReadyError",
                         latency_ms=latency)
    name, version = model_identity(result)
    return TagResult(item_id, attributes=attributes, model=name, model_version=version,
                     latency_ms=latency)


def config_json(raw) -> dict:
    return raw if isinstance(raw, dict) else json.loads(raw)
