"""Publishing a few-shot model: a new version of the attributes model, hot-loaded or not at all.

The version mechanics (folders, config switch, Triton's load API) are the serving layer's
(:mod:`fashiontag.serving.versions`); what few-shot adds is the all-or-nothing rule: a version
the running server refused to load is removed again, so the repository never holds a model that
was never served.
"""

from __future__ import annotations

from pathlib import Path

from fashiontag.serving.versions import ModelVersions

__all__ = ["publish"]


def publish(versions: ModelVersions, onnx_path: str | Path, serve_url: str | None = None,
            admin_key: str | None = None) -> int:
    """Write ``onnx_path`` as version N+1 and serve it (live with ``serve_url``); returns N+1.

    On any failure (the server refuses, a timeout, Ctrl-C) the config is back on the version it
    served and version N+1 is gone.
    """
    version = versions.add_version(onnx_path)
    try:
        versions.switch(version, serve_url, admin_key=admin_key)
    except BaseException:
        versions.remove(version)
        raise
    return version
