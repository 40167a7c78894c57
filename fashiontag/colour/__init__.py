"""Semantic colour: a fine-grained named palette and a fixed in-graph colour head.

``palette`` is import-light (numpy only); ``head`` needs torch and is used at export time.
"""

from fashiontag.colour.palette import (
    COLOUR_ATTRIBUTE_NAME,
    PALETTE,
    NamedColour,
    by_name,
    colour_attribute,
    srgb_to_lab,
)

__all__ = ["COLOUR_ATTRIBUTE_NAME", "PALETTE", "NamedColour", "by_name", "colour_attribute",
           "srgb_to_lab"]
