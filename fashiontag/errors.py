"""Exception hierarchy of the core package (the client has its own, in ``fashiontag.client``)."""

from __future__ import annotations

__all__ = ["FashiontagError", "ImageDecodeError", "ModelArtifactError", "ServerError"]


class FashiontagError(Exception):
    """Base of every error raised on purpose by fashiontag's core code."""


class ImageDecodeError(FashiontagError, ValueError):
    """An input is not a decodable image within the configured limits."""


class ModelArtifactError(FashiontagError):
    """A model file, its metadata or a model repository is missing or inconsistent."""


class ServerError(FashiontagError):
    """tritonserver could not be found, started, or did not become ready."""
