import pytest
from tritonclient.utils import InferenceServerException

from fashiontag.client import (
    ClientError,
    InvalidImageError,
    ModelNotReadyError,
    QueueFullError,
    RequestTimeoutError,
    ServerUnavailableError,
)
from fashiontag.client.errors import translate
from fashiontag.errors import FashiontagError


@pytest.mark.parametrize("status, message, expected", [
    ("StatusCode.INVALID_ARGUMENT", "in ensemble 'fashiontag', truncated JPEG", InvalidImageError),
    ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", RequestTimeoutError),
    ("StatusCode.UNAVAILABLE", "failed to connect to all addresses", ServerUnavailableError),
    ("StatusCode.UNAVAILABLE", "Exceeds maximum queue size", QueueFullError),
    ("StatusCode.UNAVAILABLE", "Request timeout expired", RequestTimeoutError),
    ("StatusCode.NOT_FOUND", "Request for unknown model: 'x' is not found", ModelNotReadyError),
    ("StatusCode.INTERNAL", "something else", ClientError),
])
def test_grpc_statuses_map_to_client_errors(status, message, expected):
    err = translate(InferenceServerException(message, status=status))
    assert type(err) is expected
    assert message in str(err)
    assert isinstance(err, FashiontagError)


def test_retryable_flags_follow_meaning():
    assert ServerUnavailableError("x").retryable and QueueFullError("x").retryable
    assert not InvalidImageError("x").retryable
