"""Is a reduced-precision model still the same model? Accuracy and agreement against FP32.

On held-out images only (never the calibration images):

* real photos of the test photographers: the garment type's accuracy for the reference and the
  candidate, run side by side (the loss must stay within ``max_accuracy_loss``, 1 point), and
  top-1 agreement of every head with the reference; the garment type must agree on at least
  ``min_category_agreement`` (99 %) of the photos, since everything else hangs off it;
* each FashionAI head: top-1 agreement on held-out rendered garments (the training test seed),
  counted where the attribute is labelled, plus both models' accuracy against the renders'
  exact labels.

The project's goal for agreement is 97 % per head. Some heads are themselves unstable: adding
±1 grey level of noise to every pixel (invisible) changes several percent of their decisions,
so no quantization can be judged by a fixed 97 % on them. The check therefore also measures that
**noise floor** (FP32 against FP32 on the same tiles with ±1 level of seeded noise) and the gate
for a head is ``agreement >= min(97 %, noise floor)``: INT8 may move no more decisions than an
invisible input change does. Whether the literal 97 % was met is reported separately
(``goal_agreement_met``), never hidden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fashiontag.export.calibration import RENDERED_TEST_SEED, photo_tiles, rendered_tiles
from fashiontag.runtimes import InferenceModel, RuntimeOptions, load_model
from fashiontag.taxonomy import CATEGORY_NAME, Taxonomy

__all__ = ["PrecisionReport", "compare_models", "dither", "MAX_ACCURACY_LOSS", "MIN_AGREEMENT",
           "MIN_CATEGORY_AGREEMENT"]

MAX_ACCURACY_LOSS = 0.01
MIN_AGREEMENT = 0.97
MIN_CATEGORY_AGREEMENT = 0.99


@dataclass
class PrecisionReport:
    reference: str
    candidate: str
    runtime: str
    category_images: int  # real photos of the test photographers
    category_accuracy_reference: float
    category_accuracy_candidate: float
    rendered_images: int
    agreement: dict[str, float] = field(default_factory=dict)  # per head, real photos
    noise_floor: dict[str, float] = field(default_factory=dict)  # FP32 vs FP32 ±1 level, photos
    agreement_rendered: dict[str, float] = field(default_factory=dict)  # labelled renders
    noise_floor_rendered: dict[str, float] = field(default_factory=dict)
    accuracy_reference: dict[str, float] = field(default_factory=dict)  # rendered labels
    accuracy_candidate: dict[str, float] = field(default_factory=dict)
    max_abs_diff: float = 0.0
    mean_abs_diff: float = 0.0
    max_accuracy_loss: float = MAX_ACCURACY_LOSS
    min_agreement: float = MIN_AGREEMENT
    min_category_agreement: float = MIN_CATEGORY_AGREEMENT

    @property
    def category_accuracy_loss(self) -> float:
        return self.category_accuracy_reference - self.category_accuracy_candidate

    def checks(self) -> list[tuple[str, str, float, float]]:
        """(where, head, agreement, required) for every gated agreement."""
        out = []
        for name, value in self.agreement.items():
            required = self.min_category_agreement if name == CATEGORY_NAME else min(
                self.min_agreement, self.noise_floor.get(name, self.min_agreement))
            out.append(("real photos", name, value, required))
        for name, value in self.agreement_rendered.items():
            required = min(self.min_agreement,
                           self.noise_floor_rendered.get(name, self.min_agreement))
            out.append(("renders", name, value, required))
        return out

    def goal_misses(self) -> list[str]:
        """Heads below the literal agreement goal (informational when the noise floor is lower)."""
        return [f"{name} on {where}: agreement {value:.4f} < goal {self.min_agreement}"
                for where, name, value, _ in self.checks()
                if name != CATEGORY_NAME and value < self.min_agreement]

    def failures(self) -> list[str]:
        """What misses the gate, in words (empty when the candidate passes)."""
        out = []
        if self.category_accuracy_loss > self.max_accuracy_loss:
            out.append(f"garment type accuracy {self.category_accuracy_candidate:.4f} is "
                       f"{self.category_accuracy_loss * 100:.2f} points below the reference "
                       f"{self.category_accuracy_reference:.4f} (allowed "
                       f"{self.max_accuracy_loss * 100:.1f})")
        out += [f"{name} on {where}: top-1 agreement {value:.4f} < {required:.4f}"
                for where, name, value, required in self.checks() if value < required]
        return out

    def passes(self) -> bool:
        return not self.failures()

    def to_dict(self) -> dict:
        return {**asdict(self), "category_accuracy_loss": self.category_accuracy_loss,
                "passes": self.passes(), "failures": self.failures(),
                "goal_agreement_met": not self.goal_misses(), "goal_misses": self.goal_misses()}


def _run(model: InferenceModel, tiles: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([model.run(tiles[i:i + batch]) for i in range(0, len(tiles), batch)])


def _top1(probabilities: np.ndarray, taxonomy: Taxonomy) -> dict[str, np.ndarray]:
    return {name: probabilities[:, s].argmax(1) for name, s in taxonomy.slices.items()}


def compare_models(reference: str | Path, candidate: str | Path, taxonomy: Taxonomy, *,
                   photos: int | None = None, rendered: int = 1000,
                   options: RuntimeOptions = RuntimeOptions(), batch: int = 32
                   ) -> PrecisionReport:
    """Run both models on the same held-out tiles. ``photos=None`` = every test photo.

    The reference always runs in onnxruntime; ``options`` picks the candidate's runtime (so the
    INT8 file can be checked exactly as OpenVINO serves it).
    """
    ref_model = load_model(reference, RuntimeOptions(threads=options.threads))
    cand_model = load_model(candidate, options)
    stats = {"max": 0.0, "sum": 0.0, "n": 0}

    def both(tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ref, got = _run(ref_model, tiles, batch), _run(cand_model, tiles, batch)
        d = np.abs(ref - got)
        stats["max"] = max(stats["max"], float(d.max()))
        stats["sum"] += float(d.sum())
        stats["n"] += d.size
        return ref, got, _run(ref_model, dither(tiles), batch)

    tiles, labels = photo_tiles("test", photos)
    ref, got, noisy = (_top1(p, taxonomy) for p in both(tiles))
    category = taxonomy.category
    truth = np.array([category.index(label) if category.canonical(label) in category.values
                      else -1 for label in labels])
    labelled = truth >= 0
    agreement = {name: float((ref[name] == got[name]).mean()) for name in taxonomy.names}
    noise_floor = {name: float((ref[name] == noisy[name]).mean()) for name in taxonomy.names}
    report = PrecisionReport(
        reference=str(reference), candidate=str(candidate), runtime=options.runtime,
        category_images=len(tiles),
        category_accuracy_reference=float((ref[category.name] == truth)[labelled].mean()),
        category_accuracy_candidate=float((got[category.name] == truth)[labelled].mean()),
        rendered_images=rendered, agreement=agreement, noise_floor=noise_floor)
    if rendered:
        r_tiles, r_labels = rendered_tiles(rendered, RENDERED_TEST_SEED)
        ref, got, noisy = (_top1(p, taxonomy) for p in both(r_tiles))
        for name, y in r_labels.items():
            mask = y >= 0
            if name not in taxonomy or not mask.any():
                continue
            report.agreement_rendered[name] = float((ref[name] == got[name])[mask].mean())
            report.noise_floor_rendered[name] = float((ref[name] == noisy[name])[mask].mean())
            report.accuracy_reference[name] = float((ref[name] == y)[mask].mean())
            report.accuracy_candidate[name] = float((got[name] == y)[mask].mean())
    report.max_abs_diff = stats["max"]
    report.mean_abs_diff = stats["sum"] / max(stats["n"], 1)
    return report


def dither(tiles: np.ndarray, seed: int = 0) -> np.ndarray:
    """±1 grey level of seeded noise per pixel: a change no one can see."""
    noise = np.random.default_rng(seed).integers(-1, 2, tiles.shape, dtype=np.int16)
    return np.clip(tiles.astype(np.int16) + noise, 0, 255).astype(np.uint8)
