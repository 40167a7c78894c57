"""The attribute taxonomy: the one definition every other part reads.

The exported ONNX model carries this taxonomy as JSON metadata; the Triton configs, the client's
decoding and the tests read it from there (or from this module), never from a copied label list.

FashionAI attributes follow the public FashionAI Global Challenge 2018 attribute track
(8 dimensions, 54 values; value order = the order of the ``n/y/m`` characters in its
``label.csv``). ``category`` is the 10-class garment category of Fashion-MNIST, on which that
head is trained.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Attribute",
    "Taxonomy",
    "TaxonomyError",
    "DEFAULT_TAXONOMY",
    "FASHIONAI_ATTRIBUTES",
    "CATEGORY",
    "INVISIBLE",
    "ONNX_METADATA_KEY",
]

INVISIBLE = "Invisible"
ONNX_METADATA_KEY = "fashiontag.taxonomy"


class TaxonomyError(ValueError):
    """A taxonomy definition or a lookup in it is inconsistent."""


@dataclass(frozen=True)
class Attribute:
    """One attribute dimension and its mutually exclusive values.

    ``invisible_value`` names the value meaning "this part is not visible in the image"; the client
    reports it as ``visible: false`` instead of as a value. ``report_top > 1`` asks clients to
    report the best ``report_top`` values with their shares (e.g. an item's dominant colours).
    """

    name: str
    values: tuple[str, ...]
    invisible_value: str | None = None
    source: str = "fashionai"
    fashionai_key: str | None = None
    description: str = ""
    report_top: int = 1

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise TaxonomyError(f"attribute name {self.name!r} must be a Python identifier")
        if len(self.values) < 2:
            raise TaxonomyError(f"attribute {self.name!r} needs at least two values")
        if len(set(self.values)) != len(self.values):
            raise TaxonomyError(f"attribute {self.name!r} has duplicate values")
        if not 1 <= self.report_top <= len(self.values):
            raise TaxonomyError(
                f"attribute {self.name!r}: report_top must be 1..{len(self.values)}")
        if self.invisible_value is not None and self.invisible_value not in self.values:
            raise TaxonomyError(
                f"attribute {self.name!r}: invisible value {self.invisible_value!r} is not a value"
            )
        object.__setattr__(self, "values", tuple(self.values))

    @property
    def num_values(self) -> int:
        return len(self.values)

    def index(self, value: str) -> int:
        try:
            return self.values.index(value)
        except ValueError:
            raise TaxonomyError(
                f"{value!r} is not a value of {self.name!r}; expected one of {list(self.values)}"
            ) from None

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "values": list(self.values),
            "invisible_value": self.invisible_value,
            "source": self.source,
            "fashionai_key": self.fashionai_key,
            "description": self.description,
        }
        if self.report_top != 1:  # absent when default: older taxonomies keep their fingerprint
            out["report_top"] = self.report_top
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> Attribute:
        return cls(
            name=data["name"],
            values=tuple(data["values"]),
            invisible_value=data.get("invisible_value"),
            source=data.get("source", "fashionai"),
            fashionai_key=data.get("fashionai_key"),
            description=data.get("description", ""),
            report_top=int(data.get("report_top", 1)),
        )


@dataclass(frozen=True)
class Taxonomy:
    """An ordered set of attributes; the model's probability vector follows this order.

    The model emits one flat float vector per image: the softmax of each attribute, concatenated in
    attribute order. ``slices`` maps each attribute to its span in that vector.
    """

    attributes: tuple[Attribute, ...]
    _by_name: dict[str, Attribute] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", tuple(self.attributes))
        names = [a.name for a in self.attributes]
        if len(set(names)) != len(names):
            raise TaxonomyError(f"duplicate attribute names in {names}")
        if not names:
            raise TaxonomyError("a taxonomy needs at least one attribute")
        object.__setattr__(self, "_by_name", {a.name: a for a in self.attributes})

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Attribute:
        try:
            return self._by_name[name]
        except KeyError:
            raise TaxonomyError(f"unknown attribute {name!r}; known: {self.names}") from None

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.attributes]

    @property
    def total_values(self) -> int:
        return sum(a.num_values for a in self.attributes)

    @property
    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for a in self.attributes:
            out[a.name] = slice(start, start + a.num_values)
            start += a.num_values
        return out

    def by_fashionai_key(self, key: str) -> Attribute:
        for a in self.attributes:
            if a.fashionai_key == key:
                return a
        raise TaxonomyError(f"no attribute maps the FashionAI key {key!r}")

    def split(self, probabilities: np.ndarray) -> dict[str, np.ndarray]:
        """Split ``[..., total_values]`` into one ``[..., num_values]`` view per attribute."""
        if probabilities.shape[-1] != self.total_values:
            raise TaxonomyError(
                f"probability vector has {probabilities.shape[-1]} entries, "
                f"taxonomy expects {self.total_values}"
            )
        return {name: probabilities[..., s] for name, s in self.slices.items()}

    def with_attribute(self, attribute: Attribute) -> Taxonomy:
        """A new taxonomy with ``attribute`` appended (or replacing one of the same name)."""
        kept = [a for a in self.attributes if a.name != attribute.name]
        return Taxonomy(tuple(kept) + (attribute,))

    def to_dict(self) -> dict:
        return {"format": 1, "attributes": [a.to_dict() for a in self.attributes]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def fingerprint(self) -> str:
        """Short content hash: lets clients notice that a served model's taxonomy changed."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    @property
    def id(self) -> int:
        """The fingerprint as a positive int32; served models emit it with every response."""
        return int(self.fingerprint[:7], 16)

    @classmethod
    def from_dict(cls, data: Mapping) -> Taxonomy:
        if data.get("format") != 1:
            raise TaxonomyError(f"unsupported taxonomy format {data.get('format')!r}")
        return cls(tuple(Attribute.from_dict(a) for a in data["attributes"]))

    @classmethod
    def from_json(cls, text: str | bytes) -> Taxonomy:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaxonomyError(f"taxonomy is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def subset(self, names: Sequence[str]) -> Taxonomy:
        return Taxonomy(tuple(self[n] for n in names))


def _fashionai(name: str, values: Sequence[str], description: str) -> Attribute:
    return Attribute(
        name=name,
        values=(INVISIBLE, *values),
        invisible_value=INVISIBLE,
        source="fashionai",
        fashionai_key=f"{name}_labels",
        description=description,
    )


FASHIONAI_ATTRIBUTES: tuple[Attribute, ...] = (
    _fashionai(
        "coat_length",
        ["High Waist Length", "Regular Length", "Long Length", "Micro Length", "Knee Length",
         "Midi Length", "Ankle&Floor Length"],
        "Length of a coat or jacket.",
    ),
    _fashionai(
        "collar_design",
        ["Shirt Collar", "Peter Pan", "Puritan Collar", "Rib Collar"],
        "Collar of a top.",
    ),
    _fashionai(
        "lapel_design",
        ["Notched", "Collarless", "Shawl Collar", "Plus Size Shawl"],
        "Lapel of a coat or suit jacket.",
    ),
    _fashionai(
        "neck_design",
        ["Turtle Neck", "Ruffle Semi-High Collar", "Low Turtle Neck", "Draped Collar"],
        "High neck treatments.",
    ),
    _fashionai(
        "neckline_design",
        ["Strapless Neck", "Deep V Neckline", "Straight Neck", "V Neckline", "Square Neckline",
         "Off Shoulder", "Round Neckline", "Sweat Heart Neck", "One Shoulder Neckline"],
        "Neckline cut of a top or dress.",
    ),
    _fashionai(
        "pant_length",
        ["Short Pant", "Mid Length", "3/4 Length", "Cropped Pant", "Full Length"],
        "Length of trousers.",
    ),
    _fashionai(
        "skirt_length",
        ["Short Length", "Knee Length", "Midi Length", "Ankle Length", "Floor Length"],
        "Length of a skirt or dress.",
    ),
    _fashionai(
        "sleeve_length",
        ["Sleeveless", "Cup Sleeves", "Short Sleeves", "Elbow Sleeves", "3/4 Sleeves",
         "Wrist Length", "Long Sleeves", "Extra Long Sleeves"],
        "Sleeve length of a top, dress or coat.",
    ),
)

CATEGORY = Attribute(
    name="category",
    values=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
            "Bag", "Ankle boot"),
    invisible_value=None,
    source="fashion-mnist",
    description="Garment category (Fashion-MNIST's 10 classes, label order of the data set).",
)

DEFAULT_TAXONOMY = Taxonomy((CATEGORY, *FASHIONAI_ATTRIBUTES))
