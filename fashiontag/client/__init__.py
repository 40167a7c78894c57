"""gRPC clients for a fashiontag server: sync (:class:`TagClient`) and asyncio
(:class:`AsyncTagClient`) twins with the same method names.

Install with ``pip install 'fashiontag[client]'`` (tritonclient[grpc], numpy, opencv; no torch).
"""

from fashiontag.client.defaults import DEFAULT_DECODE, DEFAULT_TIMEOUT_S
from fashiontag.client.errors import (
    ClientError,
    IncompatibleModelError,
    InvalidImageError,
    ModelNotReadyError,
    QueueFullError,
    RequestTimeoutError,
    ServerUnavailableError,
)
from fashiontag.client.results import AttributeSet, AttributeValue, TagResult, decode_probabilities

try:
    from fashiontag.client._common import ClientOptions
    from fashiontag.client.aio import AsyncTagClient
    from fashiontag.client.sync import TagClient
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    if "tritonclient" not in str(exc) and "grpc" not in str(exc):
        raise
    raise RuntimeError("the fashiontag client needs tritonclient[grpc]: "
                       "pip install 'fashiontag[client]'") from exc

__all__ = ["TagClient", "AsyncTagClient", "ClientOptions", "AttributeSet", "AttributeValue",
           "TagResult", "decode_probabilities", "ClientError", "InvalidImageError",
           "ModelNotReadyError", "QueueFullError", "RequestTimeoutError", "ServerUnavailableError",
           "IncompatibleModelError", "DEFAULT_DECODE", "DEFAULT_TIMEOUT_S"]
