"""Permanent errors are answered once, never retried; transient ones are retried.

The real ``TagClient``/``AsyncTagClient`` stream loops run against an in-memory stand-in for
the gRPC connection (model configs and replies as tritonclient returns them), counting the
requests each image cost.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from tritonclient.grpc import InferResult, service_pb2
from tritonclient.utils import InferenceServerException

from fashiontag.client import AsyncTagClient, IncompatibleModelError, TagClient
from fashiontag.client._common import taxonomy_from_config
from fashiontag.client._stream import RetryPolicy
from fashiontag.client.errors import RETRYABLE_ERROR_TYPES
from fashiontag.images import DEFAULT_SPEC
from fashiontag.protocol import (
    ENSEMBLE_MODEL,
    PREPROCESS_MODEL,
    PREPROCESS_PARAMETER,
    PROBABILITIES,
    TAXONOMY_PARAMETER,
)
from fashiontag.taxonomy import DEFAULT_TAXONOMY

RETRIES = 3
ITEMS = [(f"img-{i}", b"encoded image bytes") for i in range(4)]


def _fashiontag_config() -> dict:
    return {"config": {"output": [{"name": PROBABILITIES}], "parameters": {
        TAXONOMY_PARAMETER: {"string_value": DEFAULT_TAXONOMY.to_json()}}}}


def _foreign_config() -> dict:
    """Some other model now answers under the same name: no fashiontag taxonomy."""
    return {"config": {"output": [{"name": PROBABILITIES}], "parameters": {}}}


def _reply(width: int) -> InferResult:
    response = service_pb2.ModelInferResponse(model_name=ENSEMBLE_MODEL, model_version="2")
    tensor = response.outputs.add()
    tensor.name, tensor.datatype = PROBABILITIES, "FP32"
    tensor.shape.extend([1, width])
    response.raw_output_contents.append(np.full((1, width), 1.0 / width, np.float32).tobytes())
    return InferResult(response)


class Connection:
    """The gRPC connection as the clients use it: config reads, and one reply per request —
    ``error`` (an InferenceServerException), else a response ``width`` values wide."""

    def __init__(self, error: InferenceServerException | None = None, width: int = 3) -> None:
        self.error, self.width = error, width
        self.configs = {ENSEMBLE_MODEL: _fashiontag_config(), PREPROCESS_MODEL: {"config": {
            "parameters": {PREPROCESS_PARAMETER: {
                "string_value": json.dumps(DEFAULT_SPEC.to_dict())}}}}}
        self.requests = 0
        self.config_reads = 0

    def replace_model(self) -> None:
        self.configs[ENSEMBLE_MODEL] = _foreign_config()

    def get_model_config(self, model: str, as_json: bool = False) -> dict:
        self.config_reads += 1
        return self.configs[model]

    def _answer(self):
        self.requests += 1
        return (None, self.error) if self.error is not None else (_reply(self.width), None)

    def async_infer(self, model, inputs, callback, outputs=None, client_timeout=None) -> None:
        result, error = self._answer()
        callback(result=result, error=error)

    def close(self) -> None:
        pass


class AsyncConnection(Connection):
    async def get_model_config(self, model: str, as_json: bool = False) -> dict:
        return Connection.get_model_config(self, model, as_json)

    async def infer(self, model, inputs, outputs=None, client_timeout=None):
        result, error = self._answer()
        if error is not None:
            raise error
        return result

    async def close(self) -> None:
        pass


def _sync_stream(connection: Connection, after_taxonomy=None) -> list:
    client = TagClient("127.0.0.1:1", decode="server")
    client.close()  # never used: every call goes to the stand-in
    client._clients = [connection]
    client._client = connection
    client.refresh_taxonomy()
    if after_taxonomy:
        after_taxonomy()
    return list(client.tag_stream(ITEMS, retries=RETRIES, backoff_s=0.0, max_backoff_s=0.0))


def _async_stream(connection: AsyncConnection, after_taxonomy=None) -> list:
    async def run():
        client = AsyncTagClient("127.0.0.1:1", decode="server")
        await client.close()
        client._clients = [connection]
        client._client = connection
        await client.refresh_taxonomy()
        if after_taxonomy:
            after_taxonomy()
        return [r async for r in client.tag_stream(ITEMS, retries=RETRIES, backoff_s=0.0,
                                                   max_backoff_s=0.0)]
    return asyncio.run(run())


STREAMS = {"sync": (Connection, _sync_stream), "asyncio": (AsyncConnection, _async_stream)}


def test_not_a_fashiontag_model_is_a_permanent_error():
    with pytest.raises(IncompatibleModelError, match="not a fashiontag model") as info:
        taxonomy_from_config(_foreign_config(), ENSEMBLE_MODEL)
    assert not info.value.retryable
    assert not RetryPolicy(retries=8).should_retry(info.value, 1)
    assert "IncompatibleModelError" not in RETRYABLE_ERROR_TYPES  # written, not deferred


@pytest.mark.parametrize("kind", STREAMS)
def test_a_model_replaced_by_a_foreign_one_fails_each_image_once(kind):
    make, stream = STREAMS[kind]
    connection = make(width=3)  # the foreign model's answers match no fashiontag taxonomy
    results = stream(connection, after_taxonomy=connection.replace_model)
    assert [r.error_type for r in results] == ["IncompatibleModelError"] * len(ITEMS)
    assert all("not a fashiontag model" in r.error for r in results)
    assert [r.attempts for r in results] == [1] * len(ITEMS)
    assert connection.requests == len(ITEMS)


@pytest.mark.parametrize("kind", STREAMS)
@pytest.mark.parametrize("status, message, attempts", [
    ("StatusCode.UNAVAILABLE", "failed to connect to all addresses", RETRIES + 1),
    ("StatusCode.INVALID_ARGUMENT", "truncated JPEG", 1),
    ("StatusCode.INTERNAL", "model raised an exception", 1),
])
def test_only_transient_server_errors_are_retried(kind, status, message, attempts):
    make, stream = STREAMS[kind]
    connection = make(error=InferenceServerException(message, status=status))
    results = stream(connection)
    assert all(not r.ok and message in r.error for r in results)
    assert [r.attempts for r in results] == [attempts] * len(ITEMS)
    assert connection.requests == attempts * len(ITEMS)


@pytest.mark.parametrize("kind", STREAMS)
def test_a_good_answer_takes_one_request(kind):
    make, stream = STREAMS[kind]
    connection = make(width=DEFAULT_TAXONOMY.total_values)
    results = stream(connection)
    assert all(r.ok for r in results) and connection.requests == len(ITEMS)
