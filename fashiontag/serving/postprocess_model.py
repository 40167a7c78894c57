"""The python-backend model that answers ``ATTRIBUTES_JSON``: probabilities → attribute sets.

A generic KServe V2 client (curl, another language's Triton client, an inference gateway) gets
labelled attributes by asking the ``fashiontag`` ensemble for this output by name. The decoding
is :func:`fashiontag.attributes.attribute_sets_json`, the one the Python client runs, so both
answer the same set; experimental attributes are left out, as the client does by default.

Each response is decoded with the taxonomy of the version that answered (its ``TAXONOMY_ID``):
the config carries the taxonomies on disk at build time, and a version hot-loaded later is read
from the attributes model's folder the first time its id arrives. A response no taxonomy fits
gets a JSON ``{"error": ...}`` rather than an error response: the ensemble runs this step for
every request, and a client that reads only the numeric outputs must not fail because of it.
Triton runs every step of an ensemble, so server-decoding clients pay this pass-through step
(~1 ms a batch, docs/serving.md); fashiontag's own client decodes in the client by default and
calls ``fashiontag_attributes`` directly, never this step.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from fashiontag.attributes import attribute_sets_json
from fashiontag.protocol import (
    ATTRIBUTES_JSON,
    PROBABILITIES,
    TAXONOMY_HISTORY_PARAMETER,
    TAXONOMY_ID,
    TAXONOMY_MODEL_PARAMETER,
    TAXONOMY_PARAMETER,
)
from fashiontag.serving.python_models import _error_response, _parameters, _pb_utils
from fashiontag.taxonomy import Taxonomy, TaxonomyError

__all__ = ["PostprocessModel"]

log = logging.getLogger(__name__)


class PostprocessModel:
    """PROBABILITIES ``[B, W]`` (+ TAXONOMY_ID ``[B, 1]``) → the same tensors, passed through,
    and ATTRIBUTES_JSON ``BYTES [B, 1]`` when the request asks for it (a numeric client pays
    the pass-through only)."""

    def initialize(self, args: dict) -> None:
        self.pb = _pb_utils()
        self.configure(_parameters(args), Path(args["model_repository"]))

    def configure(self, params: dict[str, str], model_dir: Path) -> None:
        """Known taxonomies from the config; where hot-loaded versions are found on disk."""
        self.current = Taxonomy.from_json(params[TAXONOMY_PARAMETER])
        self.by_id = {self.current.id: self.current}
        for data in json.loads(params.get(TAXONOMY_HISTORY_PARAMETER, "[]")):
            taxonomy = Taxonomy.from_dict(data)
            self.by_id.setdefault(taxonomy.id, taxonomy)
        # model_repository is this model's folder; the attributes model is its sibling
        source = params.get(TAXONOMY_MODEL_PARAMETER)
        self.attributes_dir = Path(model_dir).parent / source if source else None

    def _rescan(self) -> None:
        """Add the taxonomies of every attributes version on disk (a hot-loaded one)."""
        if self.attributes_dir is None:
            return
        from fashiontag.serving.repository import version_taxonomies

        for taxonomy in version_taxonomies(self.attributes_dir).values():
            self.by_id.setdefault(taxonomy.id, taxonomy)

    def _taxonomy(self, taxonomy_id: int | None, width: int) -> Taxonomy | None:
        if taxonomy_id is None:  # a model without TAXONOMY_ID: only the width can tell
            fits = [t for t in self.by_id.values() if t.total_values == width]
            return fits[0] if len(fits) == 1 else None
        if taxonomy_id not in self.by_id:
            self._rescan()
        taxonomy = self.by_id.get(taxonomy_id)
        return taxonomy if taxonomy is not None and taxonomy.total_values == width else None

    def decode(self, probabilities: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
        """Rows (grouped by taxonomy id) → ``object [B, 1]`` of UTF-8 JSON."""
        probabilities = probabilities.reshape(len(probabilities), -1)
        flat_ids = None if ids is None else ids.reshape(-1)
        out = np.empty((len(probabilities), 1), dtype=object)
        keys = [None] * len(probabilities) if flat_ids is None else [int(i) for i in flat_ids]
        for key in dict.fromkeys(keys):
            rows = [i for i, k in enumerate(keys) if k == key]
            taxonomy = self._taxonomy(key, probabilities.shape[-1])
            if taxonomy is None:
                error = json.dumps({"error": f"no known taxonomy has id {key} and "
                                             f"{probabilities.shape[-1]} values"}).encode()
                out[rows, 0] = [error] * len(rows)
                continue
            for row, text in zip(rows, attribute_sets_json(taxonomy, probabilities[rows]),
                                 strict=True):
                out[row, 0] = text
        return out

    def execute(self, requests: list) -> list:
        pb = self.pb
        responses = []
        for request in requests:
            try:
                probabilities = pb.get_input_tensor_by_name(request, PROBABILITIES)
                ids = pb.get_input_tensor_by_name(request, TAXONOMY_ID)
                outputs = [probabilities] if ids is None else [probabilities, ids]
                if ATTRIBUTES_JSON in request.requested_output_names():
                    texts = self.decode(probabilities.as_numpy(),
                                        None if ids is None else ids.as_numpy())
                    outputs.append(pb.Tensor(ATTRIBUTES_JSON, texts))
                responses.append(pb.InferenceResponse(outputs))
            except (TaxonomyError, ValueError) as exc:
                responses.append(_error_response(pb, f"postprocess: {exc}", invalid=False))
            except Exception as exc:  # never let one response take the model down
                log.exception("postprocess failed")
                responses.append(_error_response(pb, f"postprocess failed: {exc}",
                                                 invalid=False))
        return responses

    def finalize(self) -> None:
        pass
