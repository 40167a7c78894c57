"""``fashiontag export --precision int8|fp16``: derive, check, and only then hand over the file.

Like the FP32 export's parity check, a reduced-precision file that misses its gate is not
written: on real photos of the test photographers, garment type accuracy within 1 point of FP32
and top-1 agreement with FP32 of at least 99 % for the garment type; for every other head, on
those photos and on held-out renders, at least min(97 %, FP32's own agreement under invisible
input noise) (:mod:`fashiontag.export.precision_check` explains why). The check's figures go
into the file's own metadata (``info[precision]["check"]``) and into
``<artifacts>/<precision>_report.json``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from fashiontag.artifacts import PRECISIONS, precision_path
from fashiontag.errors import ModelArtifactError
from fashiontag.export.calibration import CalibrationSet
from fashiontag.export.precision_check import PrecisionReport, compare_models
from fashiontag.export.quantize import convert_fp16, quantize_int8
from fashiontag.onnxio.metadata import INFO_KEY, read_metadata
from fashiontag.runtimes import RuntimeOptions

__all__ = ["PrecisionExport", "export_precision", "CHECK_SIZES", "refused_path"]

log = logging.getLogger(__name__)

#: (real test photos, rendered test garments) each precision is checked on by default;
#: None = every photo of the test photographers. FP16 is checked on fewer: slow on CPUs.
CHECK_SIZES = {"int8": (None, 500), "fp16": (300, 300)}


@dataclass(frozen=True)
class PrecisionExport:
    path: Path
    precision: str
    check: PrecisionReport

    def to_dict(self) -> dict:
        return {"path": str(self.path), "precision": self.precision, "check": self.check.to_dict()}


def refused_path(path: str | Path) -> Path:
    """Where a file that missed its gate is kept: ``fashiontag.int8.onnx`` →
    ``fashiontag.int8.refused.onnx`` (never served; benchmarks measure it, tests inspect it)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.refused{path.suffix}")


def _record_check(path: Path, precision: str, report: PrecisionReport) -> None:
    import onnx

    model = onnx.load(str(path))
    meta = read_metadata(path)
    info = dict(meta.info)
    info[precision] = {**info.get(precision, {}), "check": {
        "runtime": report.runtime,
        "category_images": report.category_images,
        "category_accuracy_fp32": round(report.category_accuracy_reference, 4),
        "category_accuracy": round(report.category_accuracy_candidate, 4),
        "rendered_images": report.rendered_images,
        "agreement": {k: round(v, 4) for k, v in report.agreement.items()},
        "fp32_noise_floor": {k: round(v, 4) for k, v in report.noise_floor.items()},
        "agreement_rendered": {k: round(v, 4) for k, v in report.agreement_rendered.items()},
        "fp32_noise_floor_rendered": {k: round(v, 4)
                                      for k, v in report.noise_floor_rendered.items()},
        "accuracy_rendered_fp32": {k: round(v, 4) for k, v in report.accuracy_reference.items()},
        "accuracy_rendered": {k: round(v, 4) for k, v in report.accuracy_candidate.items()},
        "goal_agreement_met": not report.goal_misses(),
    }}
    for prop in model.metadata_props:
        if prop.key == INFO_KEY:
            prop.value = json.dumps(info, sort_keys=True)
    onnx.save(model, str(path))


def export_precision(fp32_path: str | Path, precision: str, out_path: str | Path | None = None,
                     *, calibration: CalibrationSet = CalibrationSet(),
                     check_runtime: RuntimeOptions = RuntimeOptions(),
                     check_sizes: tuple[int | None, int] | None = None,
                     report_path: str | Path | None = None) -> PrecisionExport:
    """FP32 ONNX → checked INT8 (QDQ) or FP16 ONNX next to it (``fashiontag.int8.onnx``)."""
    if precision not in PRECISIONS or precision == "fp32":
        raise ValueError(f"precision must be one of {PRECISIONS[1:]}, got {precision!r}")
    fp32_path = Path(fp32_path)
    out_path = Path(out_path) if out_path else precision_path(fp32_path, precision)
    staging = out_path.with_suffix(".staging.onnx")
    if precision == "int8":
        quantize_int8(fp32_path, staging, calibration)
    else:
        convert_fp16(fp32_path, staging)
    photos, rendered = check_sizes or CHECK_SIZES[precision]
    meta = read_metadata(fp32_path)
    report = compare_models(fp32_path, staging, meta.taxonomy, photos=photos,
                            rendered=rendered, options=check_runtime)
    log.info("%s check: garment type accuracy %.4f (fp32 %.4f), agreement %.4f on %d real "
             "photos", precision, report.category_accuracy_candidate,
             report.category_accuracy_reference, report.agreement[meta.taxonomy.category.name],
             report.category_images)
    for miss in report.goal_misses():
        log.info("below the 97 %% agreement goal: %s", miss)
    result = PrecisionExport(out_path, precision, report)
    if report_path:
        Path(report_path).write_text(json.dumps(result.to_dict(), indent=2))
    if not report.passes():  # kept under a name nothing serves, for benchmarks and tests
        _record_check(staging, precision, report)
        staging.replace(refused_path(out_path))
        raise ModelArtifactError(f"{precision} model rejected: " + "; ".join(report.failures()))
    _record_check(staging, precision, report)
    staging.replace(out_path)
    return result
