"""From data to a servable repository: the steps ``fashiontag build`` (and ``make model``) run.

train (fine-tune + heads + temperatures) → FP32 ONNX (parity-checked) → INT8 ONNX (refused
unless it passes its gate on real photos) → the FP32 file checked under OpenVINO, exact (f32) and
in bf16 (same gate) → scores on the test photographers → Triton model repository serving the
fastest model and runtime that passed, in this order: INT8 on OpenVINO, BF16 on OpenVINO (CPUs
with AMX), FP32 on OpenVINO, FP32 on onnxruntime. ``serve="fp32"`` picks FP32 on onnxruntime, the
reference, whatever the checks said.

Each step is skipped when its output is current: a model trained by this code and
configuration, exports newer than what they were made from.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from fashiontag.artifacts import SOURCE_REPOSITORY, Artifacts
from fashiontag.errors import ModelArtifactError

__all__ = ["BuildConfig", "BuildResult", "Serving", "build", "export_fp32", "export_int8",
           "SERVE_CHOICES", "serving_choice", "check_runtime", "OPENVINO_CHECKS"]

log = logging.getLogger(__name__)

SERVE_CHOICES = ("auto", "fp32", "int8")


@dataclass
class BuildConfig:
    artifacts: Artifacts = field(default_factory=Artifacts)
    repository: Path = SOURCE_REPOSITORY
    train: object = None  # fashiontag.model.train.TrainConfig; None = its defaults
    force: bool = False  # retrain and re-export even when current
    colour: bool = True  # bring old heads files up to the current colour head
    int8: bool = True  # derive (and gate) the INT8 model
    evaluate: bool = True  # score the exports on the test photographers
    serve: str = "auto"  # see SERVE_CHOICES


@dataclass
class BuildResult:
    served: Serving  # what the repository serves
    repository: Path
    training_report: dict | None = None
    int8_refused: str | None = None  # why the INT8 model was not made, when it was not
    evaluation: dict = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)


def _stale(output: Path, *inputs: Path) -> bool:
    return not output.exists() or any(
        i.exists() and output.stat().st_mtime < i.stat().st_mtime for i in inputs)


def export_fp32(artifacts: Artifacts, out: Path | None = None):
    """Heads + tuned backbone → ``fashiontag.onnx`` (parity-checked); the result is also
    written as the export report. Returns :class:`~fashiontag.export.attribute_model.
    ExportResult`."""
    from fashiontag.export.attribute_model import export_attribute_model

    result = export_attribute_model(artifacts.heads, out or artifacts.model(),
                                    backbone_path=artifacts.backbone,
                                    training_report=artifacts.training_report)
    artifacts.export_report.write_text(json.dumps(result.to_dict(), indent=2))
    return result


def _openvino() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def export_int8(artifacts: Artifacts):
    """The checked INT8 model, gated as OpenVINO will serve it (onnxruntime without OpenVINO).
    Raises :class:`ModelArtifactError` when it misses its gate (nothing is written)."""
    from fashiontag.export.precision import export_precision
    from fashiontag.runtimes import RuntimeOptions

    runtime = "openvino" if _openvino() else "onnxruntime"
    return export_precision(artifacts.model(), "int8",
                            check_runtime=RuntimeOptions(runtime=runtime),
                            report_path=artifacts.precision_report("int8"))


@dataclass(frozen=True)
class Serving:
    """What the repository serves: a model file, the CPU runtime, OpenVINO's precision hint."""

    model: Path
    runtime: str = "onnxruntime"
    precision_hint: str = "f32"

    @property
    def label(self) -> str:
        precision = read_precision(self.model)
        if self.runtime == "openvino" and precision == "fp32" and self.precision_hint == "bf16":
            precision = "bf16"
        return f"{precision} {self.runtime}"

    def options(self):
        from fashiontag.runtimes import RuntimeOptions

        return RuntimeOptions(runtime=self.runtime, precision_hint=self.precision_hint)


#: OpenVINO variants of the FP32 file checked before they may be served, by precision hint.
OPENVINO_CHECKS = ("f32", "bf16")


def check_runtime(artifacts: Artifacts, hint: str = "f32", photos: int | None = 300):
    """The FP32 file run by OpenVINO with ``hint`` against onnxruntime, with the INT8 gate's
    rules; the report is written either way. Returns the :class:`PrecisionReport`."""
    from fashiontag.export.precision_check import compare_models
    from fashiontag.onnxio.metadata import read_metadata

    fp32 = artifacts.model()
    report = compare_models(fp32, fp32, read_metadata(fp32).taxonomy, photos=photos,
                            rendered=0, options=Serving(fp32, "openvino", hint).options())
    _openvino_report(artifacts, hint).write_text(json.dumps(report.to_dict(), indent=2))
    return report


def _openvino_report(artifacts: Artifacts, hint: str) -> Path:
    return artifacts.runtime_report("openvino" if hint == "f32" else f"openvino-{hint}")


def _passed(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text())["passes"])
    except (OSError, ValueError, KeyError):
        return False


def serving_choice(artifacts: Artifacts, serve: str = "auto") -> Serving:
    """What the repository should serve: the fastest that passed its check, in the order
    INT8 on OpenVINO, BF16 on OpenVINO (AMX CPUs), FP32 on OpenVINO, FP32 on onnxruntime."""
    if serve not in SERVE_CHOICES:
        raise ValueError(f"serve must be one of {SERVE_CHOICES}, got {serve!r}")
    int8 = artifacts.model("int8")
    if serve == "int8" and not int8.exists():
        raise ModelArtifactError(f"{int8} does not exist: the INT8 model missed its gate or was "
                                 "never built (see the int8 report)")
    if serve == "fp32":
        return Serving(artifacts.model())
    if int8.exists():
        return Serving(int8, "openvino" if _openvino() else "onnxruntime")
    if _openvino():
        for hint in reversed(OPENVINO_CHECKS):  # bf16 is the faster where it passed
            if _passed(_openvino_report(artifacts, hint)):
                return Serving(artifacts.model(), "openvino", hint)
    return Serving(artifacts.model())


def read_precision(model: Path) -> str:
    from fashiontag.onnxio.metadata import read_metadata

    return read_metadata(model).precision


def _evaluate(artifacts: Artifacts, served: Serving) -> dict:
    """The served model scored as served, on the test photographers (the training report has
    the FP32 heads' own scores)."""
    from fashiontag.evaluation import evaluate_model, read_labelled

    items = read_labelled("clothing:test")
    result = evaluate_model(items, served.model, options=served.options(),
                            source="clothing:test")
    report = {served.label: result.to_dict()}
    artifacts.evaluation_report.write_text(json.dumps(report, indent=2))
    return report


def build(cfg: BuildConfig) -> BuildResult:
    """Every step whose output is not current, then the model repository."""
    from fashiontag.model.heads import ensure_colour_head
    from fashiontag.model.train import TrainConfig, is_current, train
    from fashiontag.serving.repository import ServingSettings, build_repository

    artifacts = cfg.artifacts
    train_cfg = cfg.train or TrainConfig(artifacts=artifacts.root)
    steps: list[str] = []
    training_report = None
    if cfg.force or not is_current(train_cfg):
        training_report = train(train_cfg)
        steps.append("train")
        dropped = training_report.get("dropped_fewshot_attributes")
        if dropped:
            from fashiontag.fewshot.add import refit_attributes
            from fashiontag.taxonomy import Attribute

            refitted = refit_attributes(artifacts, [Attribute.from_dict(a) for a in dropped])
            steps.append(f"few-shot refit ({', '.join(refitted) or 'none'})")
    elif cfg.colour and ensure_colour_head(artifacts.heads):
        steps.append("colour head added")  # heads trained before colour existed
    fp32 = artifacts.model()
    if cfg.force or _stale(fp32, artifacts.heads, artifacts.backbone):
        export_fp32(artifacts)
        steps.append("export")
    refused = None
    int8 = artifacts.model("int8")
    # an INT8 file, or the report of the gate that refused one, newer than FP32: already done
    if cfg.int8 and (cfg.force or _stale(int8 if int8.exists() else
                                         artifacts.precision_report("int8"), fp32)):
        int8.unlink(missing_ok=True)  # a stale INT8 file must not be served
        try:
            export_int8(artifacts)
            steps.append("int8")
        except ModelArtifactError as exc:
            refused = str(exc)
            log.warning("serving FP32: %s", refused)
    checks = [_openvino_report(artifacts, hint) for hint in OPENVINO_CHECKS] \
        if _openvino() else []
    for hint, report_path in zip(OPENVINO_CHECKS, checks, strict=False):
        if cfg.force or _stale(report_path, fp32):
            passed = check_runtime(artifacts, hint).passes()
            steps.append(f"openvino {hint} check" + ("" if passed else " (refused)"))
    served = serving_choice(artifacts, cfg.serve)
    evaluation: dict = {}
    if cfg.evaluate and _stale(artifacts.evaluation_report, fp32, int8, *checks):
        evaluation = _evaluate(artifacts, served)
        steps.append("evaluate")
    build_repository(served.model, cfg.repository,
                     ServingSettings(runtime=served.runtime, precision_hint=served.precision_hint))
    steps.append("repository")
    return BuildResult(served, cfg.repository, training_report, refused, evaluation, steps)
