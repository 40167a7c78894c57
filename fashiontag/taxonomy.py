"""The attribute taxonomy: the one definition every other part reads.

The exported ONNX model carries this taxonomy as JSON metadata; the Triton configs, the client's
decoding and the tests read it from there (or from this module), never from a copied label list.

The taxonomy is a tree, as in the FashionAI system: ``category`` (the garment type) comes first,
and every other attribute names the garment types it ``applies_to`` (sleeve length to tops,
dresses and outerwear; pant length to pants and shorts; ...). A decoded record marks an attribute
that does not apply to the predicted type as not applicable instead of guessing a value.

``category`` holds the garment types people gave real catalog photos (the CC0 clothing data set:
:mod:`fashiontag.model.datasets.clothing`); labels people could not tell apart reliably are merged
into one type and kept as ``aliases``. FashionAI attributes follow the public FashionAI Global
Challenge 2018 attribute track (8 dimensions, 54 values; value order = the order of the ``n/y/m``
characters in its ``label.csv``). Attributes never validated on real photos are ``experimental``:
served, but left out of records unless a client asks for them.
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
    "CATEGORY_NAME",
    "GARMENT_GROUPS",
    "INVISIBLE",
    "ONNX_METADATA_KEY",
]

INVISIBLE = "Invisible"
ONNX_METADATA_KEY = "fashiontag.taxonomy"
CATEGORY_NAME = "category"  # the root of the tree: other attributes apply to some of its values


class TaxonomyError(ValueError):
    """A taxonomy definition or a lookup in it is inconsistent."""


@dataclass(frozen=True)
class Attribute:
    """One attribute dimension and its mutually exclusive values.

    ``invisible_value`` names the value meaning "this part is not visible in the image"; the client
    reports it as ``visible: false`` instead of as a value. ``report_top > 1`` asks clients to
    report the best ``report_top`` values with their shares (e.g. an item's dominant colours).
    ``applies_to`` lists the garment types (values of ``category``) the attribute means something
    for; empty = every garment. ``experimental``: never validated on real photos, so records
    leave it out unless asked. ``aliases`` map labels people use to the value they were merged
    into (``("Blouse", "Shirt")``), for scoring and for reading labelled data.
    """

    name: str
    values: tuple[str, ...]
    invisible_value: str | None = None
    source: str = "fashionai"
    fashionai_key: str | None = None
    description: str = ""
    report_top: int = 1
    applies_to: tuple[str, ...] = ()
    experimental: bool = False
    aliases: tuple[tuple[str, str], ...] = ()

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
        object.__setattr__(self, "applies_to", tuple(self.applies_to))
        aliases = tuple(sorted((str(a), str(v)) for a, v in self.aliases))
        object.__setattr__(self, "aliases", aliases)
        for alias, value in self.aliases:
            if value not in self.values:
                raise TaxonomyError(f"attribute {self.name!r}: alias {alias!r} names "
                                    f"{value!r}, which is not a value")

    @property
    def num_values(self) -> int:
        return len(self.values)

    def index(self, value: str) -> int:
        """Index of ``value`` or of the value an alias of it was merged into."""
        value = self.canonical(value)
        try:
            return self.values.index(value)
        except ValueError:
            raise TaxonomyError(
                f"{value!r} is not a value of {self.name!r}; expected one of {list(self.values)}"
            ) from None

    def canonical(self, label: str) -> str:
        """The value a label stands for: itself, or the value its alias was merged into."""
        return dict(self.aliases).get(label, label)

    def applies(self, category: str | None) -> bool:
        """Whether this attribute means something for a garment of type ``category``."""
        return not self.applies_to or category in self.applies_to

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "values": list(self.values),
            "invisible_value": self.invisible_value,
            "source": self.source,
            "fashionai_key": self.fashionai_key,
            "description": self.description,
        }
        # absent when default: older taxonomies keep their fingerprint
        if self.report_top != 1:
            out["report_top"] = self.report_top
        if self.applies_to:
            out["applies_to"] = list(self.applies_to)
        if self.experimental:
            out["experimental"] = True
        if self.aliases:
            out["aliases"] = {alias: value for alias, value in self.aliases}
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
            applies_to=tuple(data.get("applies_to", ())),
            experimental=bool(data.get("experimental", False)),
            aliases=tuple(sorted((data.get("aliases") or {}).items())),
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
        types = set(self._by_name[CATEGORY_NAME].values) if CATEGORY_NAME in names else set()
        for a in self.attributes:
            unknown = set(a.applies_to) - types
            if unknown:
                raise TaxonomyError(f"attribute {a.name!r} applies to {sorted(unknown)}, which "
                                    f"are not values of {CATEGORY_NAME!r}")

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

    def reported(self, experimental: bool = False) -> list[str]:
        """Names of the attributes a record carries: all but the experimental ones, unless
        ``experimental``."""
        return [a.name for a in self.attributes if experimental or not a.experimental]

    @property
    def category(self) -> Attribute | None:
        """The root attribute (garment type), when this taxonomy has one."""
        return self._by_name.get(CATEGORY_NAME)

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


#: Garment types by the groups the FashionAI tree hangs its attributes on.
GARMENT_GROUPS: dict[str, tuple[str, ...]] = {
    "tops": ("T-Shirt", "Polo", "Shirt", "Longsleeve", "Hoodie", "Top", "Body"),
    "outerwear": ("Outwear",),
    "dresses": ("Dress",),
    "skirts": ("Skirt",),
    "pants": ("Pants",),
    "shorts": ("Shorts",),
    "footwear": ("Shoes",),
    "headwear": ("Hat",),
}


def _types(*groups: str) -> tuple[str, ...]:
    return tuple(t for g in groups for t in GARMENT_GROUPS[g])


CATEGORY = Attribute(
    name=CATEGORY_NAME,
    values=tuple(t for types in GARMENT_GROUPS.values() for t in types),
    invisible_value=None,
    source="clothing",
    description="Garment type, as people labelled real catalog photos (CC0 clothing data set). "
                "Merged where people's labels could not be told apart: Blazer into Outwear "
                "(the Blazer label also holds denim and leather jackets others call Outwear), "
                "Blouse into Shirt (19 photos, shirt-cut women's tops), Undershirt into Top "
                "(sleeveless tops).",
    aliases=(("Blazer", "Outwear"), ("Blouse", "Shirt"), ("Undershirt", "Top")),
)


def _fashionai(name: str, values: Sequence[str], description: str, applies_to: Sequence[str],
               experimental: bool = True) -> Attribute:
    return Attribute(
        name=name,
        values=(INVISIBLE, *values),
        invisible_value=INVISIBLE,
        source="fashionai",
        fashionai_key=f"{name}_labels",
        description=description,
        applies_to=tuple(applies_to),
        experimental=experimental,
    )


_UPPER_BODY = _types("tops", "dresses", "outerwear")

#: ``experimental=False`` only where real photos validate the head (sleeve and pant length: the
#: garment types T-Shirt/Polo vs Longsleeve/Hoodie and Shorts vs Pants are their real labels).
FASHIONAI_ATTRIBUTES: tuple[Attribute, ...] = (
    _fashionai(
        "coat_length",
        ["High Waist Length", "Regular Length", "Long Length", "Micro Length", "Knee Length",
         "Midi Length", "Ankle&Floor Length"],
        "Length of a coat or jacket.", _types("outerwear"),
    ),
    _fashionai(
        "collar_design",
        ["Shirt Collar", "Peter Pan", "Puritan Collar", "Rib Collar"],
        "Collar of a top.", _UPPER_BODY,
    ),
    _fashionai(
        "lapel_design",
        ["Notched", "Collarless", "Shawl Collar", "Plus Size Shawl"],
        "Lapel of a coat or suit jacket.", _UPPER_BODY,
    ),
    _fashionai(
        "neck_design",
        ["Turtle Neck", "Ruffle Semi-High Collar", "Low Turtle Neck", "Draped Collar"],
        "High neck treatments.", _UPPER_BODY,
    ),
    _fashionai(
        "neckline_design",
        ["Strapless Neck", "Deep V Neckline", "Straight Neck", "V Neckline", "Square Neckline",
         "Off Shoulder", "Round Neckline", "Sweat Heart Neck", "One Shoulder Neckline"],
        "Neckline cut of a top or dress.", _UPPER_BODY,
    ),
    _fashionai(
        "pant_length",
        ["Short Pant", "Mid Length", "3/4 Length", "Cropped Pant", "Full Length"],
        "Length of trousers.", _types("pants", "shorts"), experimental=False,
    ),
    _fashionai(
        "skirt_length",
        ["Short Length", "Knee Length", "Midi Length", "Ankle Length", "Floor Length"],
        "Length of a skirt or dress.", _types("skirts", "dresses"),
    ),
    _fashionai(
        "sleeve_length",
        ["Sleeveless", "Cup Sleeves", "Short Sleeves", "Elbow Sleeves", "3/4 Sleeves",
         "Wrist Length", "Long Sleeves", "Extra Long Sleeves"],
        "Sleeve length of a top, dress or coat.", _UPPER_BODY, experimental=False,
    ),
)

DEFAULT_TAXONOMY = Taxonomy((CATEGORY, *FASHIONAI_ATTRIBUTES))
