"""Self-healing for python-backend models: Triton 2.51 does not restart a stub that died.

When a model's stub process is killed (OOM killer, a segfault in a native library, an operator's
mistake) the python backend answers every later request for that model with "Stub process ... is
not healthy" until the model is reloaded. The watchdog notices the missing stub within about a
second and heals: with model control enabled it reloads just that model (the admin key is the
launcher's), otherwise it restarts tritonserver on the same ports. Clients see UNAVAILABLE or a
stub error for the requests in flight and complete the work by retrying.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

__all__ = ["StubWatchdog", "stub_processes"]

log = logging.getLogger(__name__)
STUB_BINARY = "triton_python_backend_stub"


def stub_processes(pgid: int) -> dict[int, str]:
    """pid → model name of every python-backend stub in process group ``pgid`` (from /proc)."""
    stubs = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except (OSError, ProcessLookupError):
            continue
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # a zombie is a dead stub
            continue
        if argv and argv[0].endswith(STUB_BINARY.encode()) and len(argv) > 1:
            # argv[1] is <repository>/<model>/<version>/model.py
            stubs[int(entry.name)] = Path(argv[1].decode()).parents[1].name
    return stubs


class StubWatchdog(threading.Thread):
    """Polls the server's stubs; calls ``heal(model_names)`` when one has gone missing."""

    def __init__(self, pgid: Callable[[], int | None], heal: Callable[[set[str]], None],
                 interval_s: float = 1.0) -> None:
        super().__init__(name="fashiontag-stub-watchdog", daemon=True)
        self._pgid = pgid
        self._heal = heal
        self.interval_s = interval_s
        self._stop_event = threading.Event()
        self._baseline: Counter[str] | None = None
        self.heals = 0

    def rebaseline(self) -> None:
        """Record the stubs a healthy server has now (at start, after a restart or a reload)."""
        pgid = self._pgid()
        self._baseline = Counter(stub_processes(pgid).values()) if pgid is not None else None

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            pgid = self._pgid()
            if pgid is None:
                continue
            counts = Counter(stub_processes(pgid).values())
            if self._baseline is None:
                self._baseline = counts
                continue
            missing = {m for m, n in self._baseline.items() if counts.get(m, 0) < n}
            if not missing:
                self._baseline |= counts  # models loaded later (explicit mode) join the baseline
                continue
            log.warning("python-backend stub(s) of %s died; healing", sorted(missing))
            try:
                self._heal(missing)
                self.heals += 1
                self.rebaseline()
            except Exception:  # keep watching; the next tick retries
                log.exception("healing %s failed", sorted(missing))
