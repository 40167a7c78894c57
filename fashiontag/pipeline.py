"""From data to a servable repository: the steps ``fashiontag build`` (and ``make model``) run.

train (fine-tune + heads + temperatures) → FP32 ONNX (parity-checked) → INT8 ONNX (refused
unless it passes its gate on real photos) → scores on the test photographers → Triton model
repository serving the fastest model that passed: INT8 on OpenVINO when the gate passed, else
FP32 on onnxruntime (``serve="fp32"`` picks FP32 whatever the gate said).

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

__all__ = ["BuildConfig", "BuildResult", "build", "export_fp32", "export_int8", "SERVE_CHOICES",
           "serving_choice"]

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
    model: Path  # what the repository serves
    runtime: str
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


def serving_choice(artifacts: Artifacts, serve: str = "auto") -> tuple[Path, str]:
    """(model file, CPU runtime) the repository should serve: the fastest that passed."""
    if serve not in SERVE_CHOICES:
        raise ValueError(f"serve must be one of {SERVE_CHOICES}, got {serve!r}")
    int8 = artifacts.model("int8")
    if serve == "int8" and not int8.exists():
        raise ModelArtifactError(f"{int8} does not exist: the INT8 model missed its gate or was "
                                 "never built (see the int8 report)")
    if serve == "fp32" or not int8.exists():
        return artifacts.model(), "onnxruntime"
    return int8, "openvino" if _openvino() else "onnxruntime"


def _evaluate(artifacts: Artifacts, models: dict[str, tuple[Path, str]]) -> dict:
    from fashiontag.evaluation import evaluate_model, read_labelled

    items = read_labelled("clothing:test")
    report = {name: evaluate_model(items, path, runtime, "clothing:test").to_dict()
              for name, (path, runtime) in models.items()}
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
    elif cfg.colour and ensure_colour_head(artifacts.heads):
        steps.append("colour head added")  # heads trained before colour existed
    fp32 = artifacts.model()
    if cfg.force or _stale(fp32, artifacts.heads, artifacts.backbone):
        export_fp32(artifacts)
        steps.append("export")
    refused = None
    int8 = artifacts.model("int8")
    if cfg.int8 and (cfg.force or _stale(int8, fp32)):
        int8.unlink(missing_ok=True)  # a stale INT8 file must not be served
        try:
            export_int8(artifacts)
            steps.append("int8")
        except ModelArtifactError as exc:
            refused = str(exc)
            log.warning("serving FP32: %s", refused)
    evaluation: dict = {}
    if cfg.evaluate and _stale(artifacts.evaluation_report, fp32, int8):
        models = {"fp32": (fp32, "onnxruntime")}
        if int8.exists():
            models["int8"] = serving_choice(artifacts, "int8")
        evaluation = _evaluate(artifacts, models)
        steps.append("evaluate")
    model, runtime = serving_choice(artifacts, cfg.serve)
    build_repository(model, cfg.repository, ServingSettings(runtime=runtime))
    steps.append("repository")
    return BuildResult(model, runtime, cfg.repository, training_report, refused, evaluation,
                       steps)
