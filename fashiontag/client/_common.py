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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fashiontag.client.errors import ClientError, InvalidImageError, ModelNotReadyError, translate
from fashiontag.client.results import AttributeSet, TagResult, decode_probabilities
from fashiontag.protocol import (
    ENSEMBLE_MODEL,
    IMAGE,
    PROBABILITIES,
    TAXONOMY_HISTORY_PARAMETER,
    TAXONOMY_ID,
    TAXONOMY_MODEL_PARAMETER,
    TAXONOMY_PARAMETER,
)
from fashiontag.taxonomy import Taxonomy, TaxonomyError

__all__ = ["ClientOptions", "ImageItem", "normalise_item", "image_inputs", "taxonomy_from_config",
           "to_result", "TaxonomyBook", "UnknownTaxonomyError", "taxonomy_source"]

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
        raise ModelNotReadyError(f"model {model!r} has no {TAXONOMY_PARAMETER!r} parameter: "
                                 "it is not a fashiontag model")
    try:
        return Taxonomy.from_json(text)
    except TaxonomyError as exc:
        raise ModelNotReadyError(f"model {model!r} carries an unreadable taxonomy: {exc}") from None


class UnknownTaxonomyError(ModelNotReadyError):
    """A response came from a model version whose taxonomy this client has not read (yet)."""


class TaxonomyBook:
    """Every taxonomy the served model may answer with, by :attr:`Taxonomy.id`; plus the current.

    Filled from model configs by :meth:`load`; :meth:`decode` picks the taxonomy per response.
    """

    def __init__(self) -> None:
        self.current: Taxonomy | None = None
        self.by_id: dict[int, Taxonomy] = {}
        self.with_ids = False  # does the served model return TAXONOMY_ID?

    def load(self, model_config: dict, taxonomy_config: dict, model: str) -> Taxonomy:
        current = taxonomy_from_config(taxonomy_config, model)
        history = _parameter(taxonomy_config, TAXONOMY_HISTORY_PARAMETER)
        known = [current]
        if history:
            try:
                known += [Taxonomy.from_dict(t) for t in json.loads(history)]
            except (TaxonomyError, ValueError, KeyError, TypeError) as exc:
                raise ModelNotReadyError(f"model {model!r} carries unreadable taxonomies: "
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
        return decode_probabilities(taxonomy, probabilities)

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
              decode: Callable[[Any], list[AttributeSet]], started: float,
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
        return TagResult(item_id, error=str(exc), error_type="ModelNotReadyError",
                         latency_ms=latency)
    name, version = model_identity(result)
    return TagResult(item_id, attributes=attributes, model=name, model_version=version,
                     latency_ms=latency)


def config_json(raw) -> dict:
    return raw if isinstance(raw, dict) else json.loads(raw)
