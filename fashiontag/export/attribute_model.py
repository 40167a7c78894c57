"""Export the served attribute model: pretrained backbone + trained heads → one ONNX file.

The parity check runs PyTorch and onnxruntime on real images (Fashion-MNIST test photos and the
bundled sample photos), through the same :mod:`fashiontag.images` preprocessing the server uses.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fashiontag.errors import ModelArtifactError
from fashiontag.export.onnx_export import ParityReport, check_parity, export_onnx
from fashiontag.images import DEFAULT_SPEC, preprocess_array, preprocess_bytes
from fashiontag.protocol import PROBABILITIES, TAXONOMY_ID

__all__ = ["ExportResult", "export_attribute_model", "parity_tiles", "PARITY_TOLERANCE",
           "SAMPLES_DIR"]

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4  # on probabilities in [0, 1]
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    parity: ParityReport

    def to_dict(self) -> dict:
        return {"path": str(self.path), "parity": asdict(self.parity)}


def parity_tiles(fashion_mnist_images: int = 48, samples_dir: Path = SAMPLES_DIR) -> np.ndarray:
    """Real images for the parity check, preprocessed exactly as served."""
    from fashiontag.model.datasets import fashion_mnist

    images, _ = fashion_mnist.load("test")
    tiles = [preprocess_array(img) for img in images[:fashion_mnist_images]]
    for path in sorted((samples_dir / "photos").glob("*")):
        tiles.append(preprocess_bytes(path.read_bytes()))
    return np.stack(tiles)


def export_attribute_model(heads_path: str | Path, out_path: str | Path,
                           training_report: str | Path | None = None,
                           tolerance: float = PARITY_TOLERANCE,
                           extra_info: dict | None = None) -> ExportResult:
    """Export, then refuse to hand over a file whose outputs differ from PyTorch's.

    Outputs: ``PROBABILITIES`` and ``TAXONOMY_ID`` (see :class:`~fashiontag.model.network.
    ServedModel`). ``extra_info`` is merged into the model's info metadata (e.g. few-shot
    cross-validation results).
    """
    from fashiontag.model.backbone import BACKBONE_NAME, load_backbone, weights_fingerprint
    from fashiontag.model.heads import load_heads
    from fashiontag.model.network import AttributeHeads, AttributeModel, ServedModel

    taxonomy, heads = load_heads(heads_path)
    model = AttributeModel(load_backbone(), AttributeHeads(taxonomy, heads), DEFAULT_SPEC).eval()
    served = ServedModel(model, taxonomy.id).eval()
    info = {"backbone": BACKBONE_NAME, "backbone_weights": weights_fingerprint(),
            "heads": {name: {"kind": h.kind, "hidden": h.hidden} for name, h in heads.items()}}
    if training_report and Path(training_report).exists():
        report = json.loads(Path(training_report).read_text())
        info["test_accuracy"] = {k: v["test_accuracy"] for k, v in report["heads"].items()}
        info["test_sets"] = {k: v.get("test_set", "") for k, v in report["heads"].items()}
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
