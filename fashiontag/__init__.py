"""fashiontag: fine-grained fashion attribute tagging served by Triton Inference Server.

The top level stays import-light (no torch, no tritonclient) so that a catalog service that only
calls the server can ``pip install fashiontag[client]`` and ``from fashiontag.client import ...``.
"""

from fashiontag.errors import FashiontagError, ImageDecodeError
from fashiontag.taxonomy import DEFAULT_TAXONOMY, Attribute, Taxonomy

__version__ = "0.1.0"

__all__ = ["Attribute", "Taxonomy", "DEFAULT_TAXONOMY", "FashiontagError", "ImageDecodeError",
           "__version__"]
