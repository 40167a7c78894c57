"""Reading and writing weight files without unpickling code.

``backbone.pt``, ``heads.pt`` and the head fits passed between training processes hold only
tensors, numbers, strings, lists and dicts, and are read with ``torch.load(weights_only=True)``:
a file that carries anything else (a pickled callable, an arbitrary object) is refused before
any of it runs. Loading a model, in the trainer or inside tritonserver, never executes code
that came with the file.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from fashiontag.errors import ModelArtifactError

__all__ = ["load_weights", "save_weights", "plain_config"]


def save_weights(payload: dict, path: str | Path) -> Path:
    """Write ``payload`` (tensors and plain values only); atomic replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_weights(path: str | Path, what: str = "weights file") -> dict:
    """``path``'s payload, read with ``weights_only=True``; ModelArtifactError if it is missing,
    not a torch file, or carries anything but tensors and plain values."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelArtifactError(f"{what} {path} does not exist") from None
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        carried = f" ({found.group(1)})" if found else ""
        raise ModelArtifactError(f"{what} {path} carries code or objects{carried}, not only "
                                 "tensors and plain values: refused, nothing in it was run"
                                 ) from None
    except Exception as exc:  # torch raises KeyError, RuntimeError, EOFError... on a bad file
        raise ModelArtifactError(f"{what} {path} is not a readable torch file "
                                 f"({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict):
        raise ModelArtifactError(f"{what} {path} holds a {type(payload).__name__}, not a dict")
    return payload


def plain_config(config: dict[str, Any]) -> dict[str, Any]:
    """A head's constructor arguments as JSON values (what ``weights_only`` reads back);
    ValueError for anything else, at save time rather than at the next load."""
    try:
        return json.loads(json.dumps(config))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"head config {config!r} is not plain JSON values: {exc}") from None
