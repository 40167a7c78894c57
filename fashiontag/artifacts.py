"""Where build outputs live: the one spelling of every artifact path.

Training writes the heads and its report here, export the ONNX files and their check reports,
few-shot its labels and history, benchmarks their scratch catalogs; the CLI, the demo, the tests
and the benchmarks read them back through :class:`Artifacts`, never through a copied file name.
The checkout's own folders (``samples/``, ``model_repository/``) are named here too.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Artifacts", "CHECKOUT", "SAMPLES_DIR", "SOURCE_REPOSITORY", "DEFAULT_ROOT",
           "checkout_artifacts", "precision_path", "PRECISIONS"]

CHECKOUT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = CHECKOUT / "samples"
#: The committed repository: python model sources live here; configs and weights are generated.
SOURCE_REPOSITORY = CHECKOUT / "model_repository"
#: What the command line uses when no ``--artifacts`` is given (relative to the working folder).
DEFAULT_ROOT = Path("artifacts")

PRECISIONS = ("fp32", "int8", "fp16")
_MODEL_FILE = "fashiontag.onnx"


def precision_path(fp32_path: str | Path, precision: str) -> Path:
    """``fashiontag.onnx`` → ``fashiontag.int8.onnx`` next to it (fp32 keeps its name); the
    naming rule for any exported file, wherever ``--out`` put it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    fp32_path = Path(fp32_path)
    if precision == "fp32":
        return fp32_path
    return fp32_path.with_name(f"{fp32_path.stem}.{precision}{fp32_path.suffix}")


@dataclass(frozen=True)
class Artifacts:
    """The layout under one artifacts folder."""

    root: Path = DEFAULT_ROOT

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def heads(self) -> Path:
        """Every trained head (any kind) with the taxonomy they answer to."""
        return self.root / "heads.pt"

    @property
    def backbone(self) -> Path:
        """The fine-tuned backbone weights (the frozen trunk plus the tuned blocks)."""
        return self.root / "backbone.pt"

    @property
    def training_report(self) -> Path:
        return self.root / "training_report.json"

    def model(self, precision: str = "fp32") -> Path:
        """The exported attribute model (``fashiontag.onnx``, ``fashiontag.int8.onnx``...)."""
        return precision_path(self.root / _MODEL_FILE, precision)

    @property
    def export_report(self) -> Path:
        return self.root / "export_report.json"

    def precision_report(self, precision: str) -> Path:
        return self.root / f"{precision}_report.json"

    def runtime_report(self, runtime: str, precision: str = "fp32") -> Path:
        """The check of a model file run by another runtime than the reference onnxruntime."""
        return self.root / f"{precision}_{runtime}_report.json"

    @property
    def evaluation_report(self) -> Path:
        """Real-photo scores of the exported models (``fashiontag evaluate``, test split)."""
        return self.root / "evaluation_report.json"

    @property
    def cache(self) -> Path:
        """Derived data that is safe to delete: backbone exports, feature and activation caches."""
        return self.root / "cache"

    @property
    def features_cache(self) -> Path:
        return self.cache / "features"

    @property
    def fewshot_root(self) -> Path:
        return self.root / "fewshot"

    def fewshot(self, name: str) -> Path:
        """Labels, report and suggestions of one few-shot attribute."""
        return self.fewshot_root / name

    def fewshot_labels(self, name: str) -> Path:
        """The labels a few-shot attribute was trained on (``path,value``; refitted from them
        when the backbone changes)."""
        return self.fewshot(name) / "labels.csv"

    @property
    def studio(self) -> Path:
        """What people decide in ``fashiontag studio``: attribute definitions, labels, thumbs."""
        return self.root / "studio"

    @property
    def studio_attributes(self) -> Path:
        """The attributes defined in the studio (names, values, garment types)."""
        return self.studio / "attributes.json"

    @property
    def studio_labels(self) -> Path:
        return self.studio / "labels"

    def studio_label_file(self, attribute: str) -> Path:
        """The studio's ``path,value`` labels of one attribute (corrections of served tags
        too, which training reads for the next model)."""
        return self.studio_labels / f"{attribute}.csv"

    @property
    def fewshot_history(self) -> Path:
        """Heads files replaced by few-shot additions, newest last."""
        return self.fewshot_root / "history"

    @property
    def bench_catalog(self) -> Path:
        return self.root / "bench-catalog"

    @property
    def gpu_check(self) -> Path:
        return self.root / "gpu_check"

    def working_copy(self, root: str | Path) -> Artifacts:
        """A private artifacts folder at ``root`` for work that must leave these alone (few-shot
        tests and benchmarks): the trained files are copied, the cached backbone exports (costly
        to make, never written to) are linked."""
        copy = Artifacts(root)
        copy.cache.mkdir(parents=True, exist_ok=True)
        for path in (self.heads, self.backbone, self.training_report):
            if path.exists():
                shutil.copy2(path, copy.root / path.name)
        for export in self.cache.glob("backbone-*.onnx"):
            (copy.cache / export.name).symlink_to(export.resolve())
        return copy


def checkout_artifacts() -> Artifacts:
    """The checkout's own ``artifacts/`` (what ``make model`` builds): for tests and benchmarks,
    which run from anywhere."""
    return Artifacts(CHECKOUT / "artifacts")
