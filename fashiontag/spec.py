"""The preprocessing contract (tile size, padding, normalisation, layout) as plain data.

Kept apart from :mod:`fashiontag.images` (which implements it with OpenCV and Pillow) so that the
network definition, the exporter and the metadata reader import it without an image library: the
GPU check runs the model where OpenCV may not be installed. :mod:`fashiontag.images` re-exports
these names; it stays the one place that turns bytes into tiles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["PreprocessSpec", "DEFAULT_SPEC", "ONNX_METADATA_KEY"]

ONNX_METADATA_KEY = "fashiontag.preprocess"


@dataclass(frozen=True)
class PreprocessSpec:
    """How pixels become model input; written into the ONNX metadata and read back from it."""

    size: int = 224
    pad_value: int = 127  # letterbox padding; (127 - mean) * scale == 0, i.e. "no signal"
    mean: float = 127.0
    scale: float = 1.0 / 128.0
    layout: str = "NHWC"
    channels: str = "RGB"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessSpec:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


DEFAULT_SPEC = PreprocessSpec()
