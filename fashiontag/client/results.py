"""Results of tagging one image as JSON records; attribute sets come from fashiontag.attributes."""

from __future__ import annotations

from dataclasses import dataclass, field

# the decoding lives below client and server (one decoding for both); re-exported here
from fashiontag.attributes import AttributeSet, AttributeValue, decode_probabilities

__all__ = ["AttributeValue", "AttributeSet", "TagResult", "decode_probabilities"]


@dataclass
class TagResult:
    """One image's outcome: attributes, or an error saying why this image (only) failed."""

    id: str
    attributes: AttributeSet | None = None
    error: str | None = None
    error_type: str | None = None
    model: str | None = None
    model_version: str | None = None
    latency_ms: float | None = None  # from entering the client to the result, retries included
    extra: dict = field(default_factory=dict)
    attempts: int = 1  # requests sent for this image (>1 after retries)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_record(self) -> dict:
        record: dict = {"id": self.id, **self.extra}
        if self.ok:
            record["attributes"] = self.attributes.to_dict() if self.attributes else {}
        else:
            record["error"] = self.error
            record["error_type"] = self.error_type
        record["model"] = self.model
        record["model_version"] = self.model_version
        return record
