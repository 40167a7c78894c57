"""Decoding the model's probability vector into attribute sets: the one decoding of the product.

Below the client and the server on purpose: the Python client decodes the numeric output with it,
and the server's postprocess model (``ATTRIBUTES_JSON``) turns the same sets into JSON, so every
protocol returns the same answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from fashiontag.taxonomy import Taxonomy

__all__ = ["AttributeValue", "AttributeSet", "decode_probabilities", "attribute_sets_json"]


@dataclass(frozen=True)
class AttributeValue:
    """The top value of one attribute. ``value is None`` and ``visible is False`` when the model's
    best guess is the attribute's "Invisible" value (the part is not in the picture).

    Hierarchy: ``applicable is False`` (and no value) when the attribute does not apply to the
    predicted garment type (sleeve length of a shoe). ``applicability`` is the probability mass
    of the garment types it applies to (None for attributes that apply to every garment): when
    the type itself is uncertain, it says how likely the attribute is to mean anything at all,
    and ``confidence`` is the value's probability given that it does.
    """

    value: str | None
    confidence: float
    visible: bool = True
    top: tuple[tuple[str, float], ...] = ()  # best values with shares, for report_top > 1
    applicable: bool = True
    applicability: float | None = None

    def to_dict(self) -> dict:
        if not self.applicable:
            return {"value": None, "applicable": False,
                    "applicability": round(self.applicability or 0.0, 4)}
        out: dict = {"value": self.value, "confidence": round(self.confidence, 4)}
        if not self.visible:
            out["visible"] = False
        if self.top:
            out["top"] = [{"value": v, "confidence": round(p, 4)} for v, p in self.top]
        if self.applicability is not None:
            out["applicability"] = round(self.applicability, 4)
        return out


class AttributeSet(Mapping[str, AttributeValue]):
    """Attribute name → :class:`AttributeValue`, in taxonomy order; JSON via :meth:`to_dict`."""

    __slots__ = ("_values", "_probabilities", "_taxonomy")

    def __init__(self, values: dict[str, AttributeValue], probabilities: np.ndarray | None = None,
                 taxonomy: Taxonomy | None = None) -> None:
        self._values = values
        self._probabilities = probabilities
        self._taxonomy = taxonomy

    def __getitem__(self, name: str) -> AttributeValue:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v.value!r}@{v.confidence:.2f}" for k, v in self._values.items())
        return f"AttributeSet({inner})"

    @property
    def visible(self) -> dict[str, AttributeValue]:
        """Attributes with a value: applicable to the garment and visible in the picture."""
        return {k: v for k, v in self._values.items() if v.visible and v.applicable}

    @property
    def vector(self) -> np.ndarray | None:
        """The model's raw probability vector (taxonomy order), when it was kept."""
        return self._probabilities

    def probabilities(self, name: str) -> dict[str, float]:
        """Full distribution of one attribute (every value, "Invisible" included)."""
        if self._probabilities is None or self._taxonomy is None:
            raise ValueError("this attribute set was built without its probability vector")
        attribute = self._taxonomy[name]
        row = self._probabilities[self._taxonomy.slices[name]]
        return {v: float(p) for v, p in zip(attribute.values, row, strict=False)}

    def to_dict(self) -> dict[str, dict]:
        return {k: v.to_dict() for k, v in self._values.items()}


def _attribute_set(taxonomy: Taxonomy, row: np.ndarray, experimental: bool) -> AttributeSet:
    slices = taxonomy.slices
    category = taxonomy.category
    garment, garment_p = None, None
    if category is not None:
        garment_p = row[slices[category.name]]
        garment = category.values[int(garment_p.argmax())]
    values = {}
    for attribute in taxonomy:
        if attribute.experimental and not experimental:
            continue
        p = row[slices[attribute.name]]
        applicability = None
        if attribute.applies_to and garment_p is not None:
            applicability = float(sum(garment_p[category.values.index(t)]
                                      for t in attribute.applies_to))
            if not attribute.applies(garment):
                values[attribute.name] = AttributeValue(None, 0.0, applicable=False,
                                                        applicability=applicability)
                continue
        best = int(p.argmax())
        name = attribute.values[best]
        invisible = name == attribute.invisible_value
        top: tuple = ()
        if attribute.report_top > 1:
            order = np.argsort(-p, kind="stable")[:attribute.report_top]
            top = tuple((attribute.values[i], float(p[i])) for i in order)
        values[attribute.name] = AttributeValue(None if invisible else name, float(p[best]),
                                                visible=not invisible, top=top,
                                                applicability=applicability)
    return AttributeSet(values, row, taxonomy)


def decode_probabilities(taxonomy: Taxonomy, probabilities: np.ndarray,
                         experimental: bool = False) -> list[AttributeSet]:
    """``[N, total_values]`` (or one row) → one :class:`AttributeSet` per image.

    Attributes the taxonomy marks experimental are left out unless ``experimental`` is True.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim == 1:
        probabilities = probabilities[None]
    if probabilities.shape[-1] != taxonomy.total_values:
        raise ValueError(f"model returned {probabilities.shape[-1]} probabilities; the taxonomy "
                         f"has {taxonomy.total_values} values")
    return [_attribute_set(taxonomy, row, experimental) for row in probabilities]


def attribute_sets_json(taxonomy: Taxonomy, probabilities: np.ndarray,
                        experimental: bool = False) -> list[bytes]:
    """One compact JSON object (:meth:`AttributeSet.to_dict`) per row, UTF-8: what the server
    answers as ``ATTRIBUTES_JSON``."""
    return [json.dumps(s.to_dict(), separators=(",", ":")).encode()
            for s in decode_probabilities(taxonomy, probabilities, experimental)]
