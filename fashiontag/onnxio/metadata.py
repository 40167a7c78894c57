"""What an exported model carries about itself, and how to read it back.

The taxonomy and the preprocessing spec travel inside the ONNX file's ``metadata_props``; the
Triton config generator, the served python model and the tests read them from there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from fashiontag.errors import ModelArtifactError
from fashiontag.protocol import PROBABILITIES
from fashiontag.spec import ONNX_METADATA_KEY as PREPROCESS_KEY
from fashiontag.spec import PreprocessSpec
from fashiontag.taxonomy import ONNX_METADATA_KEY as TAXONOMY_KEY
from fashiontag.taxonomy import Taxonomy

__all__ = ["INFO_KEY", "ModelMetadata", "read_metadata", "metadata_props"]

INFO_KEY = "fashiontag.model"


@dataclass(frozen=True)
class ModelMetadata:
    taxonomy: Taxonomy
    preprocess: PreprocessSpec
    info: dict = field(default_factory=dict)
    outputs: tuple[str, ...] = (PROBABILITIES,)  # graph output names, in order

    @property
    def precision(self) -> str:
        return self.info.get("precision", "fp32")


def metadata_props(taxonomy: Taxonomy, spec: PreprocessSpec, info: dict) -> dict[str, str]:
    return {
        TAXONOMY_KEY: taxonomy.to_json(),
        PREPROCESS_KEY: json.dumps(spec.to_dict(), sort_keys=True),
        INFO_KEY: json.dumps(info, sort_keys=True),
    }


def read_metadata(path: str | Path) -> ModelMetadata:
    """Read the fashiontag metadata of an ONNX file (without loading its weights into a runtime)."""
    import onnx

    path = Path(path)
    if not path.exists():
        raise ModelArtifactError(f"model file {path} does not exist; run `fashiontag export`")
    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    if TAXONOMY_KEY not in props:
        raise ModelArtifactError(
            f"{path} has no {TAXONOMY_KEY!r} metadata: it was not exported by `fashiontag export`"
        )
    return ModelMetadata(
        taxonomy=Taxonomy.from_json(props[TAXONOMY_KEY]),
        preprocess=PreprocessSpec.from_dict(json.loads(props.get(PREPROCESS_KEY, "{}"))),
        info=json.loads(props.get(INFO_KEY, "{}")),
        outputs=tuple(o.name for o in model.graph.output),
    )
