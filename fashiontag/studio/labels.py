"""What people decide in the studio: attribute definitions and their labels, kept on disk.

Where :class:`~fashiontag.artifacts.Artifacts` says (``<artifacts>/studio/``):
``attributes.json`` (name, values, garment types it applies to) and one
``labels/<attribute>.csv`` of ``path,value`` rows per attribute, read and written by
:mod:`fashiontag.labels`, so "train & deploy" hands that file to ``fashiontag fewshot add
--images`` as it is and "export" downloads it. A correction of a served tag (``category`` is
really ``Hoodie``) is a label like any other, for the next training of that head. Every write
replaces the file atomically; one lock serialises writers (the web server is threaded).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fashiontag.artifacts import Artifacts
from fashiontag.errors import FashiontagError
from fashiontag.fewshot.report import DataRequirements
from fashiontag.labels import LabelledImage, csv_text, read_labels
from fashiontag.taxonomy import Attribute, Taxonomy, TaxonomyError

__all__ = ["AttributeDefinition", "LabelStore", "StudioError"]


class StudioError(FashiontagError):
    """A studio request that cannot be done as asked (unknown attribute, bad value ...)."""


@dataclass(frozen=True)
class AttributeDefinition:
    name: str
    values: tuple[str, ...]
    applies_to: tuple[str, ...] = ()
    description: str = ""

    def attribute(self) -> Attribute:
        """The taxonomy entry it will become (validates name and values)."""
        try:
            return Attribute(self.name, tuple(sorted(self.values)), source="fewshot",
                             description=self.description, applies_to=self.applies_to)
        except TaxonomyError as exc:
            raise StudioError(str(exc)) from None


@dataclass
class LabelStore:
    layout: Artifacts
    requirements: DataRequirements = field(default_factory=DataRequirements)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._labels: dict[str, dict[str, str]] = {}  # attribute → path → value
        for path in sorted(self.layout.studio_labels.glob("*.csv")):
            # images since removed from the catalog keep their labels (must_exist=False)
            self._labels[path.stem] = {str(i.path): i.value for i in read_labels(
                path, attribute=path.stem, must_exist=False) if i.attribute == path.stem}

    # ---------------------------------------------------------------- attributes
    @property
    def _attributes_file(self) -> Path:
        return self.layout.studio_attributes

    def definitions(self) -> dict[str, AttributeDefinition]:
        if not self._attributes_file.exists():
            return {}
        data = json.loads(self._attributes_file.read_text())
        return {d["name"]: AttributeDefinition(d["name"], tuple(d["values"]),
                                               tuple(d.get("applies_to", ())),
                                               d.get("description", "")) for d in data}

    def define(self, definition: AttributeDefinition, taxonomy: Taxonomy) -> AttributeDefinition:
        """Add or replace a new attribute; refused when it would clash with a served one that
        is not few-shot, or name garment types the served taxonomy does not have."""
        attribute = definition.attribute()
        if attribute.name in taxonomy and taxonomy[attribute.name].source != "fewshot":
            raise StudioError(f"{attribute.name!r} is a built-in attribute; pick another name")
        try:
            taxonomy.with_attribute(attribute)
        except TaxonomyError as exc:
            raise StudioError(str(exc)) from None
        with self._lock:
            definitions = self.definitions()
            definitions[definition.name] = definition
            self._write(self._attributes_file, json.dumps(
                [asdict(d) for d in definitions.values()], indent=2))
        return definition

    # ---------------------------------------------------------------- labels
    def labels(self, attribute: str) -> dict[str, str]:
        return dict(self._labels.get(attribute, {}))

    def set_label(self, attribute: str, path: Path, value: str | None) -> None:
        """Label one image (``None`` removes its label)."""
        with self._lock:
            labels = self._labels.setdefault(attribute, {})
            if value is None:
                labels.pop(str(path), None)
            else:
                labels[str(path)] = value
            self._write(self.labels_file(attribute), self.csv_text(attribute))

    def labels_file(self, attribute: str) -> Path:
        return self.layout.studio_label_file(attribute)

    def csv_text(self, attribute: str) -> str:
        return csv_text(LabelledImage(Path(path), attribute, value) for path, value
                        in sorted(self._labels.get(attribute, {}).items()))

    def counts(self, attribute: str, values: tuple[str, ...]) -> dict[str, dict[str, int]]:
        """value → labels so far and how many more the refusal rules ask for."""
        labelled = self._labels.get(attribute, {}).values()
        have = {v: sum(1 for x in labelled if x == v) for v in values}
        needed = self.requirements.needed(have) if have else {}
        return {v: {"labels": have[v], "needed": needed.get(v, 0)} for v in values}

    @staticmethod
    def _write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
