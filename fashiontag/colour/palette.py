"""The named colour vocabulary of the ``colour`` attribute, and sRGB → CIELAB in numpy.

Fine-grained on purpose (Alibaba's catalog used 166 semantic colour names, not 8 basic ones):
fashion names first (Burgundy, Camel, Charcoal, Mustard, ...), then the W3C CSS named colours,
with near-duplicates removed (a later name within ΔE76 < 4 of an earlier one is dropped), so every
name is a distinguishable colour. Each name carries one of the 11 basic colour terms as its
``family``, used to summarise and to test, never to decide the name.

Hex values: W3C CSS Color Module Level 4 for CSS names; common reference values (Wikipedia's
colour articles) for the fashion names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["NamedColour", "PALETTE", "FAMILIES", "MIN_DELTA_E", "srgb_to_lab", "palette_lab",
           "by_name", "colour_attribute", "COLOUR_ATTRIBUTE_NAME"]

COLOUR_ATTRIBUTE_NAME = "colour"
MIN_DELTA_E = 4.0
FAMILIES = ("black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink",
            "brown")


@dataclass(frozen=True)
class NamedColour:
    name: str
    hex: str
    family: str

    @property
    def rgb(self) -> tuple[int, int, int]:
        h = self.hex.lstrip("#")
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


# (name, hex, family). Order = priority when two names are closer than MIN_DELTA_E.
_CANDIDATES: tuple[tuple[str, str, str], ...] = (
    # --- fashion names
    ("Black", "#000000", "black"), ("White", "#FFFFFF", "white"),
    ("Navy", "#000080", "blue"), ("Charcoal", "#36454F", "grey"),
    ("Grey", "#808080", "grey"), ("Light Grey", "#D3D3D3", "grey"),
    ("Silver", "#C0C0C0", "grey"), ("Gunmetal", "#2A3439", "grey"),
    ("Ivory", "#FFFFF0", "white"), ("Cream", "#FFFDD0", "white"),
    ("Off White", "#F5F5F5", "white"), ("Champagne", "#F7E7CE", "white"),
    ("Beige", "#F5F5DC", "brown"), ("Sand", "#C2B280", "brown"),
    ("Khaki", "#C3B091", "brown"), ("Camel", "#C19A6B", "brown"),
    ("Tan", "#D2B48C", "brown"), ("Taupe", "#483C32", "brown"),
    ("Coffee", "#6F4E37", "brown"), ("Dark Brown", "#654321", "brown"),
    ("Chocolate", "#D2691E", "brown"), ("Chestnut", "#954535", "brown"),
    ("Cognac", "#9A463D", "brown"), ("Rust", "#B7410E", "orange"),
    ("Copper", "#B87333", "brown"), ("Bronze", "#CD7F32", "brown"),
    ("Ochre", "#CC7722", "orange"), ("Mustard", "#FFDB58", "yellow"),
    ("Gold", "#FFD700", "yellow"), ("Canary", "#FFFF99", "yellow"),
    ("Lemon", "#FFF700", "yellow"), ("Yellow", "#FFFF00", "yellow"),
    ("Burgundy", "#800020", "red"), ("Wine", "#722F37", "red"),
    ("Maroon", "#800000", "red"), ("Red", "#FF0000", "red"),
    ("Scarlet", "#FF2400", "red"), ("Crimson", "#DC143C", "red"),
    ("Raspberry", "#E30B5C", "red"), ("Terracotta", "#E2725B", "orange"),
    ("Coral", "#FF7F50", "orange"), ("Orange", "#FFA500", "orange"),
    ("Peach", "#FFE5B4", "orange"), ("Apricot", "#FBCEB1", "orange"),
    ("Salmon", "#FA8072", "pink"), ("Blush", "#DE5D83", "pink"),
    ("Pink", "#FFC0CB", "pink"), ("Baby Pink", "#F4C2C2", "pink"),
    ("Hot Pink", "#FF69B4", "pink"), ("Fuchsia", "#FF00FF", "pink"),
    ("Rose", "#FF007F", "pink"), ("Mauve", "#E0B0FF", "purple"),
    ("Lilac", "#C8A2C8", "purple"), ("Lavender", "#E6E6FA", "purple"),
    ("Amethyst", "#9966CC", "purple"), ("Plum", "#8E4585", "purple"),
    ("Purple", "#800080", "purple"), ("Violet", "#EE82EE", "purple"),
    ("Indigo", "#4B0082", "purple"), ("Cobalt", "#0047AB", "blue"),
    ("Royal Blue", "#4169E1", "blue"), ("Denim", "#1560BD", "blue"),
    ("Blue", "#0000FF", "blue"), ("Sky Blue", "#87CEEB", "blue"),
    ("Baby Blue", "#89CFF0", "blue"), ("Powder Blue", "#B0E0E6", "blue"),
    ("Electric Blue", "#7DF9FF", "blue"), ("Petrol", "#005F6A", "blue"),
    ("Teal", "#008080", "green"), ("Turquoise", "#40E0D0", "blue"),
    ("Aqua", "#00FFFF", "blue"), ("Mint", "#3EB489", "green"),
    ("Jade", "#00A86B", "green"), ("Emerald", "#50C878", "green"),
    ("Kelly Green", "#4CBB17", "green"), ("Bottle Green", "#006A4E", "green"),
    ("Hunter Green", "#355E3B", "green"), ("Army Green", "#4B5320", "green"),
    ("Olive", "#808000", "green"), ("Sage", "#BCB88A", "green"),
    ("Green", "#008000", "green"), ("Lime", "#00FF00", "green"),
    # --- W3C CSS named colours (the ones not already covered above)
    ("Alice Blue", "#F0F8FF", "white"), ("Antique White", "#FAEBD7", "white"),
    ("Aquamarine", "#7FFFD4", "green"), ("Azure", "#F0FFFF", "white"),
    ("Bisque", "#FFE4C4", "orange"), ("Blanched Almond", "#FFEBCD", "white"),
    ("Blue Violet", "#8A2BE2", "purple"), ("Brown", "#A52A2A", "brown"),
    ("Burlywood", "#DEB887", "brown"), ("Cadet Blue", "#5F9EA0", "blue"),
    ("Chartreuse", "#7FFF00", "green"), ("Cornflower Blue", "#6495ED", "blue"),
    ("Cornsilk", "#FFF8DC", "white"), ("Dark Blue", "#00008B", "blue"),
    ("Dark Cyan", "#008B8B", "blue"), ("Dark Goldenrod", "#B8860B", "yellow"),
    ("Dark Grey", "#A9A9A9", "grey"), ("Dark Green", "#006400", "green"),
    ("Dark Khaki", "#BDB76B", "green"), ("Dark Magenta", "#8B008B", "purple"),
    ("Dark Olive Green", "#556B2F", "green"), ("Dark Orange", "#FF8C00", "orange"),
    ("Dark Orchid", "#9932CC", "purple"), ("Dark Red", "#8B0000", "red"),
    ("Dark Salmon", "#E9967A", "orange"), ("Dark Sea Green", "#8FBC8F", "green"),
    ("Dark Slate Blue", "#483D8B", "blue"), ("Dark Slate Grey", "#2F4F4F", "grey"),
    ("Dark Turquoise", "#00CED1", "blue"), ("Dark Violet", "#9400D3", "purple"),
    ("Deep Pink", "#FF1493", "pink"), ("Deep Sky Blue", "#00BFFF", "blue"),
    ("Dim Grey", "#696969", "grey"), ("Dodger Blue", "#1E90FF", "blue"),
    ("Firebrick", "#B22222", "red"), ("Floral White", "#FFFAF0", "white"),
    ("Forest Green", "#228B22", "green"), ("Gainsboro", "#DCDCDC", "grey"),
    ("Ghost White", "#F8F8FF", "white"), ("Goldenrod", "#DAA520", "yellow"),
    ("Green Yellow", "#ADFF2F", "green"), ("Honeydew", "#F0FFF0", "white"),
    ("Indian Red", "#CD5C5C", "red"), ("Pale Khaki", "#F0E68C", "yellow"),
    ("Lavender Blush", "#FFF0F5", "white"), ("Lawn Green", "#7CFC00", "green"),
    ("Lemon Chiffon", "#FFFACD", "yellow"), ("Light Blue", "#ADD8E6", "blue"),
    ("Light Coral", "#F08080", "pink"), ("Light Cyan", "#E0FFFF", "blue"),
    ("Light Goldenrod", "#FAFAD2", "yellow"), ("Light Green", "#90EE90", "green"),
    ("Light Pink", "#FFB6C1", "pink"), ("Light Salmon", "#FFA07A", "orange"),
    ("Light Sea Green", "#20B2AA", "green"), ("Light Sky Blue", "#87CEFA", "blue"),
    ("Light Slate Grey", "#778899", "grey"), ("Light Steel Blue", "#B0C4DE", "blue"),
    ("Light Yellow", "#FFFFE0", "yellow"), ("Lime Green", "#32CD32", "green"),
    ("Linen", "#FAF0E6", "white"), ("Medium Aquamarine", "#66CDAA", "green"),
    ("Medium Blue", "#0000CD", "blue"), ("Medium Orchid", "#BA55D3", "purple"),
    ("Medium Purple", "#9370DB", "purple"), ("Medium Sea Green", "#3CB371", "green"),
    ("Medium Slate Blue", "#7B68EE", "blue"), ("Medium Spring Green", "#00FA9A", "green"),
    ("Medium Turquoise", "#48D1CC", "blue"), ("Medium Violet Red", "#C71585", "pink"),
    ("Midnight Blue", "#191970", "blue"), ("Mint Cream", "#F5FFFA", "white"),
    ("Misty Rose", "#FFE4E1", "pink"), ("Moccasin", "#FFE4B5", "orange"),
    ("Navajo White", "#FFDEAD", "orange"), ("Old Lace", "#FDF5E6", "white"),
    ("Olive Drab", "#6B8E23", "green"), ("Orange Red", "#FF4500", "orange"),
    ("Orchid", "#DA70D6", "purple"), ("Pale Goldenrod", "#EEE8AA", "yellow"),
    ("Pale Green", "#98FB98", "green"), ("Pale Turquoise", "#AFEEEE", "blue"),
    ("Pale Violet Red", "#DB7093", "pink"), ("Papaya Whip", "#FFEFD5", "orange"),
    ("Peach Puff", "#FFDAB9", "orange"), ("Peru", "#CD853F", "brown"),
    ("Light Plum", "#DDA0DD", "purple"), ("Rebecca Purple", "#663399", "purple"),
    ("Rosy Brown", "#BC8F8F", "brown"), ("Saddle Brown", "#8B4513", "brown"),
    ("Sandy Brown", "#F4A460", "brown"), ("Sea Green", "#2E8B57", "green"),
    ("Seashell", "#FFF5EE", "white"), ("Sienna", "#A0522D", "brown"),
    ("Slate Blue", "#6A5ACD", "blue"), ("Slate Grey", "#708090", "grey"),
    ("Snow", "#FFFAFA", "white"), ("Spring Green", "#00FF7F", "green"),
    ("Steel Blue", "#4682B4", "blue"), ("Thistle", "#D8BFD8", "purple"),
    ("Tomato", "#FF6347", "red"), ("Wheat", "#F5DEB3", "brown"),
    ("Yellow Green", "#9ACD32", "green"),
)

# D65 white point; sRGB primaries (IEC 61966-2-1)
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_WHITE = np.array([0.95047, 1.0, 1.08883])
_EPS, _KAPPA = 216 / 24389, 24389 / 27


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """``[..., 3]`` sRGB in 0..255 → CIELAB (D65). The torch twin is in :mod:`.head`."""
    c = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > _EPS, np.cbrt(xyz), (_KAPPA * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def _deduplicate(candidates) -> tuple[NamedColour, ...]:
    kept: list[NamedColour] = []
    labs: list[np.ndarray] = []
    for name, hex_value, family in candidates:
        colour = NamedColour(name, hex_value, family)
        lab = srgb_to_lab(np.array(colour.rgb))
        if labs and np.linalg.norm(np.stack(labs) - lab, axis=1).min() < MIN_DELTA_E:
            continue
        kept.append(colour)
        labs.append(lab)
    return tuple(kept)


PALETTE: tuple[NamedColour, ...] = _deduplicate(_CANDIDATES)
"""The vocabulary, in the order of the attribute's values."""


@lru_cache(maxsize=1)
def _index() -> dict[str, NamedColour]:
    return {c.name: c for c in PALETTE}


def by_name(name: str) -> NamedColour:
    try:
        return _index()[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a palette colour") from None


def palette_lab(names: tuple[str, ...] | None = None) -> np.ndarray:
    """``float32 [K, 3]`` CIELAB of ``names`` (default: the whole palette, in order)."""
    colours = PALETTE if names is None else tuple(by_name(n) for n in names)
    return srgb_to_lab(np.array([c.rgb for c in colours])).astype(np.float32)


def colour_attribute():
    """The ``colour`` attribute: one value per palette name (import-light: no torch)."""
    from fashiontag.taxonomy import Attribute

    return Attribute(
        name=COLOUR_ATTRIBUTE_NAME,
        values=tuple(c.name for c in PALETTE),
        source="colour",
        report_top=3,
        description="Dominant garment colours: share of foreground pixels nearest (CIELAB) to "
                    "each named colour; background estimated from the image border.",
    )
