"""Functional tests run against a real tritonserver started on free ports.

One server serves the whole session (start-up costs seconds); tests that need their own server
(lifecycle, signals) start one themselves. Teardown checks that no server process and no shared
memory region of ours is left behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fashiontag.artifacts import SOURCE_REPOSITORY
from fashiontag.serving.server import ServerConfig, TritonServer


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/functional" in str(item.fspath):
            item.add_marker(pytest.mark.functional)


@pytest.fixture(scope="session")
def repository(built_model) -> Path:
    if not (SOURCE_REPOSITORY / "fashiontag_attributes" / "1" / "model.onnx").exists():
        pytest.fail("model_repository/ is not built: run `make model`")
    return SOURCE_REPOSITORY


@pytest.fixture(scope="session")
def int8_model(built_model) -> Path:
    """The INT8 model `make model` builds next to the FP32 one."""
    from fashiontag.artifacts import precision_path

    path = precision_path(built_model, "int8")
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make model` (it builds the INT8 model too)")
    return path


@pytest.fixture(scope="session")
def served_model(repository) -> tuple[Path, object]:
    """(model file, RuntimeOptions) the repository's attributes model serves, from its config."""
    from fashiontag.protocol import ATTRIBUTES_MODEL
    from fashiontag.runtimes import RuntimeOptions
    from fashiontag.serving.versions import ModelVersions

    versions = ModelVersions(repository)
    config = versions.config()
    params = {k: v.string_value for k, v in config.parameters.items()}
    path = repository / ATTRIBUTES_MODEL / str(versions.served()) / params["onnx_file"]
    return path, RuntimeOptions.from_parameters(params)


def free_port_config(repository: Path, **kwargs) -> ServerConfig:
    kwargs.setdefault("launcher_metrics_port", 0)
    return ServerConfig(repository=repository, grpc_port=0, http_port=0, metrics_port=0, **kwargs)


@pytest.fixture(scope="session")
def server(repository, tmp_path_factory):
    srv = TritonServer(free_port_config(
        repository, log_path=tmp_path_factory.mktemp("triton") / "server.log"))
    srv.start()
    yield srv
    srv.stop()
    assert not srv.is_running()
    assert not list(Path("/dev/shm").glob(f"{srv.shm_prefix}*")), "shared memory left behind"


@pytest.fixture
def client(server):
    from fashiontag.client import TagClient

    # decode="server": these tests exercise the server's own decoding (bad inputs, limits)
    with TagClient(server.grpc_url, decode="server", timeout_s=60) as c:
        yield c
