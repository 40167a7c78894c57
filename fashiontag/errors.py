"""Exception hierarchy of the core package (the client has its own, in ``fashiontag.client``)."""

from __future__ import annotations

__all__ = ["DECODE_ERROR_REASONS", "FashiontagError", "ImageDecodeError", "ModelArtifactError",
           "ServerError"]


class FashiontagError(Exception):
    """Base of every error raised on purpose by fashiontag's core code."""


# Why an input failed to decode: the ``reason`` label of the server's decode-error counter
# (docs/serving.md, "Metrics"), so operators see which images fail and why.
DECODE_ERROR_REASONS = ("not_bytes", "empty", "too_many_bytes", "unknown_format",
                        "unreadable_header", "empty_dimension", "too_many_pixels", "truncated",
                        "corrupt", "invalid")


class ImageDecodeError(FashiontagError, ValueError):
    """An input is not a decodable image within the configured limits; ``reason`` is one of
    :data:`DECODE_ERROR_REASONS`."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        if reason not in DECODE_ERROR_REASONS:
            raise ValueError(f"unknown decode error reason {reason!r}")
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):  # keeps the reason across processes (Ray workers, pickling)
        return type(self), (str(self), self.reason)


class ModelArtifactError(FashiontagError):
    """A model file, its metadata or a model repository is missing or inconsistent."""


class ServerError(FashiontagError):
    """tritonserver could not be found, started, or did not become ready."""
