"""Client-side errors: one base, each carrying the gRPC status it was translated from.

Callers never need to import grpc or tritonclient to tell a bad image from a down server.
"""

from __future__ import annotations

from fashiontag.errors import FashiontagError
from fashiontag.protocol import SHED_MESSAGES

__all__ = ["ClientError", "InvalidImageError", "ServerUnavailableError", "RequestTimeoutError",
           "ModelNotReadyError", "UnknownTaxonomyError", "IncompatibleModelError",
           "QueueFullError", "translate", "RETRYABLE_ERROR_TYPES"]


class ClientError(FashiontagError):
    """Base of every client error; ``status`` is the gRPC status name when there was one."""

    retryable = False

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidImageError(ClientError):
    """The server refused this input (undecodable, too large, wrong type); retrying won't help."""


class ServerUnavailableError(ClientError):
    """The server could not be reached or is shutting down; retrying later may succeed."""

    retryable = True


class QueueFullError(ServerUnavailableError):
    """The server shed this request because its queue was full; back off and retry."""


class RequestTimeoutError(ClientError):
    """The request exceeded its deadline."""

    retryable = True


class ModelNotReadyError(ClientError):
    """The model is not loaded (yet), or answered with a version this client has not read."""

    retryable = True


class UnknownTaxonomyError(ModelNotReadyError):
    """A response came from a model version whose taxonomy this client has not read (yet)."""


class IncompatibleModelError(ClientError):
    """The served model is not one this client can use (not a fashiontag model, an unreadable
    taxonomy or preprocessing spec): the server's configuration, not its state, so retrying
    cannot help."""


#: ``TagResult.error_type`` names of failures that are the server's state, not the image's
RETRYABLE_ERROR_TYPES = frozenset(
    cls.__name__ for cls in (ServerUnavailableError, QueueFullError, RequestTimeoutError,
                             ModelNotReadyError))


def translate(exc: Exception) -> ClientError:
    """tritonclient/grpc exception → :class:`ClientError` subclass (at the boundary, once)."""
    if isinstance(exc, ClientError):
        return exc
    status = None
    if hasattr(exc, "status") and callable(exc.status):
        status = exc.status()
    message = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
    status_name = (str(status) if status is not None else "").replace("StatusCode.", "")
    lowered = (message or "").lower()
    if status_name == "INVALID_ARGUMENT" or "invalid_arg" in status_name.lower():
        return InvalidImageError(message, status_name)
    queue_full, queue_timeout = SHED_MESSAGES
    if status_name == "DEADLINE_EXCEEDED" or "deadline exceeded" in lowered \
            or queue_timeout in lowered:  # Triton's queue policy shed it
        return RequestTimeoutError(message, status_name)
    if queue_full in lowered or "queue" in lowered and "full" in lowered:
        return QueueFullError(message, status_name)
    if status_name in ("UNAVAILABLE", "CANCELLED") or "unavailable" in lowered \
            or "failed to connect" in lowered or "connection refused" in lowered:
        return ServerUnavailableError(message, status_name)
    if status_name == "NOT_FOUND" or "is not ready" in lowered or "unknown model" in lowered \
            or "not found" in lowered:
        return ModelNotReadyError(message, status_name)
    return ClientError(message, status_name or None)
