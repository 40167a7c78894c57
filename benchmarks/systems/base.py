"""A served system under test: started and stopped by the benchmark, measured through a Target."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from benchmarks.loadgen import Target


class System:
    """Context manager: ``with system: run_closed_loop(system.target(), ...)``.

    ``name`` is what tables and plots show; ``settings`` is recorded next to every number so a
    result can be reproduced; ``pids()`` lets the benchmark measure the server's CPU use.
    """

    name = "system"
    kind = "peer"  # "fashiontag" | "peer"

    def __init__(self, model: Path, precision: str = "fp32") -> None:
        self.model = Path(model).resolve()
        self.precision = precision
        self.workdir: Path | None = None

    @property
    def settings(self) -> dict:
        return {}

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def target(self) -> Target:
        raise NotImplementedError

    def pids(self) -> list[int]:
        return []

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "model": str(self.model),
                "precision": self.precision, "settings": self.settings}

    def _make_workdir(self, prefix: str) -> Path:
        # short: Ray's unix socket paths must stay under 108 characters
        self.workdir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        return self.workdir

    def _remove_workdir(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> System:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
