"""Export the served attribute model: fine-tuned backbone + trained heads → one ONNX file.

The parity check runs PyTorch and onnxruntime on real images (garment photos of the test
photographers and the bundled samples), through the same :mod:`fashiontag.images`
preprocessing the server uses.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fashiontag.artifacts import SAMPLES_DIR
from fashiontag.errors import ModelArtifactError
from fashiontag.images import DEFAULT_SPEC, preprocess_bytes
from fashiontag.labels import image_files
from fashiontag.onnxio.torch_export import ParityReport, check_parity, export_onnx
from fashiontag.protocol import PROBABILITIES, TAXONOMY_ID

__all__ = ["ExportResult", "export_attribute_model", "parity_tiles", "PARITY_TOLERANCE"]

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4  # on probabilities in [0, 1]


@dataclass(frozen=True)
class ExportResult:
    path: Path
    parity: ParityReport

    def to_dict(self) -> dict:
        return {"path": str(self.path), "parity": asdict(self.parity)}


def parity_tiles(photos: int = 48, samples_dir: Path = SAMPLES_DIR) -> np.ndarray:
    """Real images for the parity check, preprocessed exactly as served: the bundled samples,
    plus ``photos`` garment photos of the test photographers where the data set is here."""
    from fashiontag.errors import FashiontagError
    from fashiontag.model.datasets import clothing

    paths = [p for p in image_files(samples_dir) if "broken" not in p.parts]
    try:
        paths += [p.path for p in clothing.sender_split(clothing.load()).test[:photos]]
    except FashiontagError:
        pass  # a machine without the photos (e.g. adding a few-shot attribute elsewhere)
    return np.stack([preprocess_bytes(p.read_bytes()) for p in paths])


def export_attribute_model(heads_path: str | Path, out_path: str | Path,
                           backbone_path: str | Path | None = None,
                           training_report: str | Path | None = None,
                           tolerance: float = PARITY_TOLERANCE,
                           extra_info: dict | None = None) -> ExportResult:
    """Export, then refuse to hand over a file whose outputs differ from PyTorch's.

    ``backbone_path``: the fine-tuned tail (``backbone.pt``); None = the pretrained backbone.
    Outputs: ``PROBABILITIES`` and ``TAXONOMY_ID`` (see :class:`~fashiontag.model.network.
    ServedModel`). ``extra_info`` is merged into the model's info metadata (e.g. few-shot
    cross-validation results).
    """
    from fashiontag.model.backbone import BACKBONE_NAME, backbone_fingerprint, load_backbone
    from fashiontag.model.heads import load_heads
    from fashiontag.model.network import AttributeHeads, AttributeModel, ServedModel

    taxonomy, heads = load_heads(heads_path)
    model = AttributeModel(load_backbone(backbone_path), AttributeHeads(taxonomy, heads),
                           DEFAULT_SPEC).eval()
    served = ServedModel(model, taxonomy.id).eval()
    info = {"backbone": BACKBONE_NAME, "backbone_weights": backbone_fingerprint(backbone_path),
            "heads": {name: {"kind": h.kind, "hidden": h.hidden} for name, h in heads.items()}}
    if training_report and Path(training_report).exists():
        report = json.loads(Path(training_report).read_text())
        info["test_accuracy"] = {k: v["test_accuracy"] for k, v in report["heads"].items()}
        info["test_sets"] = {k: v.get("test_set", "") for k, v in report["heads"].items()}
        info["real_photos"] = {k: {m: v["real_photos"][m] for m in (
            "accuracy", "ece", "ece_before", "examples", "short_long_accuracy")
            if m in v["real_photos"]} for k, v in report["heads"].items() if "real_photos" in v}
    info.update(extra_info or {})
    out_path = Path(out_path)
    staging = out_path.with_suffix(".staging.onnx")
    export_onnx(served, staging, DEFAULT_SPEC, taxonomy=taxonomy, info=info,
                output_names=[PROBABILITIES, TAXONOMY_ID])
    parity = check_parity(served, staging, parity_tiles(), taxonomy)
    log.info("parity on %d real images: max |torch - onnxruntime| = %.2e, argmax agreement %.4f",
             parity.images, parity.max_abs_diff, parity.argmax_agreement)
    if not parity.ok(tolerance):
        staging.unlink(missing_ok=True)
        raise ModelArtifactError(f"ONNX export failed the parity check (tolerance {tolerance}): "
                                 f"{parity}")
    staging.replace(out_path)
    return ExportResult(out_path, parity)
