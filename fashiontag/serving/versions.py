"""Model versions of ``fashiontag_attributes`` on disk: list, write, switch (live), roll back.

A new model never overwrites the one being served: it goes into version folder N+1, the config
is pointed at it (``version_policy.specific``, plus the taxonomy its ONNX carries and those of the
versions still on disk), and the running Triton is asked to load that config. Triton loads N+1
while N keeps answering, then retires N once its in-flight requests are done, so no request fails.
Each response says which taxonomy produced it (``TAXONOMY_ID``), and the client picks the labels
accordingly (:class:`fashiontag.client._common.TaxonomyBook`). Rollback is the same switch to an
older folder.

The load/unload API exists only when the operator started the server with
``--model-control explicit``; otherwise the new version is written and served after a restart.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from fashiontag.artifacts import SOURCE_REPOSITORY
from fashiontag.errors import FashiontagError, ModelArtifactError
from fashiontag.onnxio.metadata import read_metadata
from fashiontag.protocol import ATTRIBUTES_MODEL, ENSEMBLE_MODEL, TAXONOMY_ID, admin_headers
from fashiontag.serving.repository import (
    ONNX_FILE,
    config_to_json,
    disk_versions,
    read_config,
    set_served_version,
    version_taxonomies,
    write_config,
)

__all__ = ["ReloadError", "ModelVersions", "VersionInfo", "load_on_server",
           "check_model_control"]

_NO_CONTROL_HINT = ("\nthe server does not allow model control: start it with "
                    "`fashiontag serve --model-control explicit` (operators only)")
_LOCKED_HINT = ("\nthe server locks model control with the operator's admin key: pass "
                "--admin-key-file or set $FASHIONTAG_ADMIN_KEY")
PROBE_MODEL = "fashiontag_model_control_probe"  # never exists: loading it only tests the API

log = logging.getLogger(__name__)


class ReloadError(FashiontagError):
    """A version could not be written, switched to, or loaded by the running server."""


@dataclass(frozen=True)
class VersionInfo:
    version: int
    attributes: tuple[str, ...]
    fingerprint: str
    served: bool

    def describe(self) -> str:
        mark = "*" if self.served else " "
        return f"{mark} {self.version:>3}  {self.fingerprint}  {', '.join(self.attributes)}"


class ModelVersions:
    """The attributes model's version folders in one repository and which one its config serves."""

    def __init__(self, repository: str | Path = SOURCE_REPOSITORY,
                 model: str = ATTRIBUTES_MODEL) -> None:
        self.repository = Path(repository)
        self.model = model
        self.model_dir = self.repository / model

    @property
    def config_path(self) -> Path:
        return self.model_dir / "config.pbtxt"

    def config(self):
        if not self.config_path.exists():
            raise ReloadError(f"{self.config_path} does not exist: build the repository first "
                              "(`fashiontag build-repo`)")
        return read_config(self.config_path)

    def versions(self) -> list[int]:
        return disk_versions(self.model_dir)

    def served(self) -> int:
        """The version the config serves: its ``specific`` version, else the newest on disk."""
        specific = list(self.config().version_policy.specific.versions)
        if specific:
            return int(specific[-1])
        versions = self.versions()
        if not versions:
            raise ReloadError(f"{self.model_dir} has no model versions")
        return versions[-1]

    def info(self) -> list[VersionInfo]:
        served = self.served()
        return [VersionInfo(v, tuple(t.names), t.fingerprint, v == served)
                for v, t in version_taxonomies(self.model_dir).items()]

    def check_reloadable(self) -> None:
        """Repositories generated before hot reload (fixed output width) cannot switch widths."""
        ensemble = read_config(self.repository / ENSEMBLE_MODEL / "config.pbtxt")
        outputs = {o.name: list(o.dims) for o in ensemble.output}
        if TAXONOMY_ID not in outputs or any(d != -1 for d in next(iter(outputs.values()))):
            raise ReloadError(
                f"{self.repository} was generated before hot reload existed (fixed output width, "
                "no TAXONOMY_ID): regenerate it with `fashiontag build-repo` and restart the "
                "server once")

    def add_version(self, onnx_path: str | Path) -> int:
        """Copy a model into a new version folder N+1 (staged, then renamed atomically)."""
        config = self.config()
        if config.platform == "tensorrt_plan":
            raise ReloadError("a tensorrt_plan repository needs an engine per version: build one "
                              "from the new ONNX and add it by hand; few-shot reload writes ONNX")
        read_metadata(onnx_path)  # refuse files without fashiontag metadata
        version = max(self.versions(), default=0) + 1
        staging = self.model_dir / f".staging-{version}-{time.time_ns()}"
        staging.mkdir(parents=True)
        try:
            shutil.copy2(onnx_path, staging / ONNX_FILE)
            if config.backend == "python":
                source = SOURCE_REPOSITORY / self.model / "1" / "model.py"
                if not source.exists():
                    raise ModelArtifactError(f"python model source {source} is missing")
                shutil.copy2(source, staging / "model.py")
            staging.rename(self.model_dir / str(version))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return version

    def point_config_at(self, version: int):
        """Rewrite the config to serve ``version``; returns the new ``ModelConfig``."""
        if version not in self.versions():
            raise ReloadError(f"{self.model} has no version {version} on disk "
                              f"(versions: {self.versions()})")
        config = self.config()
        meta = read_metadata(self.model_dir / str(version) / ONNX_FILE)
        history = tuple(version_taxonomies(self.model_dir, exclude=(version,)).values())
        set_served_version(config, meta, version, history)
        write_config(config, self.model_dir)
        return config

    def previous(self) -> int:
        served = self.served()
        older = [v for v in self.versions() if v < served]
        if not older:
            raise ReloadError(f"{self.model} version {served} is the oldest on disk: nothing to "
                              "roll back to")
        return older[-1]

    def roll_back(self, url: str | None = None, admin_key: str | None = None) -> int:
        """Serve the version before the served one again (live with ``url``); returns it."""
        version = self.previous()
        self.switch(version, url, admin_key=admin_key)
        return version

    def remove(self, version: int) -> None:
        """Delete a version folder the config does not serve (e.g. one that never loaded)."""
        if version == self.served():
            raise ReloadError(f"{self.model} version {version} is the served one")
        shutil.rmtree(self.model_dir / str(version), ignore_errors=True)

    def switch(self, version: int, url: str | None = None, timeout_s: float = 300.0,
               admin_key: str | None = None):
        """Point the config at ``version`` and, with ``url``, load it into the running server.

        If the server refuses, the config on disk is put back to what it was, so disk and server
        agree, and :class:`ReloadError` says why.
        """
        before = self.config()
        config = self.point_config_at(version)
        if url is None:
            return config
        try:
            load_on_server(url, config, self.model, version, timeout_s, admin_key)
        except BaseException:
            write_config(before, self.model_dir)
            raise
        return config


def load_on_server(url: str, config, model: str, version: int, timeout_s: float = 300.0,
                   admin_key: str | None = None) -> None:
    """Ask Triton (explicit model control) to load ``config``; wait until ``version`` answers.

    ``admin_key``: the operator's key the server was started with (model control is locked).
    """
    from tritonclient.grpc import InferenceServerClient
    from tritonclient.utils import InferenceServerException

    client = InferenceServerClient(url)
    try:
        try:
            client.load_model(model, headers=admin_headers(admin_key),
                              config=config_to_json(config), client_timeout=timeout_s)
        except InferenceServerException as exc:
            text = str(exc)
            hint = _hint(text)
            raise ReloadError(f"the server at {url} did not load {model} version {version}: "
                              f"{text}{hint}") from None
        deadline = time.monotonic() + timeout_s
        while not (client.is_model_ready(model, str(version))
                   and client.is_model_ready(ENSEMBLE_MODEL)):
            if time.monotonic() > deadline:
                raise ReloadError(f"{model} version {version} not ready after {timeout_s:.0f} s")
            time.sleep(0.1)
    finally:
        client.close()


def _control_disabled(message: str) -> bool:
    text = message.lower()
    return "not allowed" in text or "polling is enabled" in text or "disabled" in text


def _hint(message: str) -> str:
    """Why a load was refused, in the operator's terms (empty when it is something else)."""
    if "restricted" in message.lower():  # Triton's answer to a missing or wrong admin key
        return _LOCKED_HINT
    return _NO_CONTROL_HINT if _control_disabled(message) else ""


def check_model_control(url: str, admin_key: str | None = None) -> None:
    """Fail fast (before minutes of training) when ``url`` cannot hot-load.

    Asks the server to load a model that does not exist: with explicit model control that fails
    harmlessly ("failed to poll from model repository"); without it the API itself is refused.
    """
    from tritonclient.grpc import InferenceServerClient
    from tritonclient.utils import InferenceServerException

    client = InferenceServerClient(url)
    try:
        client.load_model(PROBE_MODEL, headers=admin_headers(admin_key), client_timeout=30)
    except InferenceServerException as exc:
        if _hint(str(exc)):
            raise ReloadError(f"the server at {url} cannot hot-load: {exc}{_hint(str(exc))}") \
                from None
        if "unavailable" in str(exc).lower() or "failed to connect" in str(exc).lower():
            raise ReloadError(f"cannot reach a server at {url}: {exc}") from None
    finally:
        client.close()
