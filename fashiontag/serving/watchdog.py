"""Self-healing for python-backend models: Triton 2.51 does not restart a stub that died.

When a model's stub process is killed (OOM killer, a segfault in a native library, an operator's
mistake) the python backend answers every later request for that model with "Stub process ... is
not healthy" until the model is reloaded. The watchdog notices the missing stub within a couple
of seconds and heals: with model control enabled it reloads just that model (the admin key is
the launcher's), otherwise it restarts tritonserver on the same ports. Clients see UNAVAILABLE or
a stub error for the requests in flight and complete the work by retrying.

Stubs also end legitimately: a hot reload retires the old version's stubs, and the python
backend runs short-lived helper stubs while loading (``AUTOCOMPLETE_STUB``, and one named after
the model itself rather than an instance, seen during few-shot reloads). So a stub counts as
dead only when its instance has no live process *and* Triton still serves its model version
(ready, and named by the config), on two consecutive looks.

The same thread notices when tritonserver itself has exited without being asked to (the OOM
killer, a crash) and has the launcher start it again on the same ports.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Stub", "StubWatchdog", "stub_processes"]

log = logging.getLogger(__name__)
STUB_BINARY = "triton_python_backend_stub"
_TRANSIENT_INSTANCES = {"AUTOCOMPLETE_STUB"}


@dataclass(frozen=True)
class Stub:
    """One python-backend stub process: which model version and instance it serves."""

    model: str
    version: str
    instance: str


def _stub_of(argv: list[bytes]) -> Stub | None:
    """The model version and instance a stub serves, read from its command line; None when the
    process is not an instance stub or its command line does not say (never raises).

    argv: stub, <repository>/<model>/<version>/model.py, shm region, sizes, parent pid, backend
    dir, ipc size, instance name, ... A stub still starting up, or one exec'd through a wrapper,
    can show fewer arguments or a path without the model and version folders.
    """
    if not argv or not argv[0].endswith(STUB_BINARY.encode()) or len(argv) < 2:
        return None
    parts = Path(argv[1].decode(errors="replace")).parts
    if len(parts) < 3 or not parts[-2].isdigit():  # not <model>/<version>/model.py
        return None
    model, version = parts[-3], parts[-2]
    instance = argv[8].decode(errors="replace") if len(argv) > 8 else ""
    if not instance or instance in _TRANSIENT_INSTANCES or instance == model:
        return None  # a loading helper, not an instance serving requests
    return Stub(model, version, instance)


def stub_processes(pgid: int) -> dict[int, Stub]:
    """pid → :class:`Stub` for every live instance stub in process group ``pgid`` (/proc)."""
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
        stub = _stub_of(argv)
        if stub is not None:
            stubs[int(entry.name)] = stub
    return stubs


class StubWatchdog(threading.Thread):
    """Polls the server's stubs; calls ``heal(model_names)`` when a serving stub died.

    ``is_ready(model, version)`` asks the server whether a model version is loaded and ready.
    """

    def __init__(self, pgid: Callable[[], int | None], heal: Callable[[set[str]], None],
                 is_ready: Callable[[str, str], bool], interval_s: float = 1.0,
                 revive: Callable[[], None] | None = None) -> None:
        super().__init__(name="fashiontag-stub-watchdog", daemon=True)
        self._pgid = pgid
        self._heal = heal
        self._is_ready = is_ready
        self._revive = revive  # called when tritonserver itself is gone (OOM kill, crash)
        self.interval_s = interval_s
        self._stop_event = threading.Event()
        self._known: dict[int, Stub] = {}
        self._suspects: set[Stub] = set()
        self._revive_failures = 0
        self.heals = 0
        self.errors = 0  # looks that raised unexpectedly (logged; the watchdog carried on)

    def rebaseline(self) -> None:
        """Record the stubs a healthy server has now (at start, after a restart or a reload)."""
        pgid = self._pgid()
        self._known = stub_processes(pgid) if pgid is not None else {}
        self._suspects = set()

    def stop(self) -> None:
        self._stop_event.set()

    def check(self) -> set[Stub]:
        """One look: the stubs confirmed dead (missing on two looks while still 'ready')."""
        pgid = self._pgid()
        if pgid is None:
            return set()
        current = stub_processes(pgid)
        alive = set(current.values())
        missing = {s for pid, s in self._known.items() if pid not in current and s not in alive}
        dead = {s for s in missing if self._is_ready(s.model, s.version)}
        confirmed = dead & self._suspects
        self._suspects = dead - confirmed
        # keep remembering suspects (their pids are gone) until confirmed or cleared
        self._known = {**{p: s for p, s in self._known.items() if s in self._suspects}, **current}
        return confirmed

    def run(self) -> None:
        """Look every ``interval_s`` until stopped. Nothing one look raises may end the thread:
        a dead watchdog would leave the server unguarded without a word, so an unexpected error
        is logged, counted in :attr:`errors` and the next look carries on."""
        while not self._stop_event.wait(self.interval_s):
            try:
                self._look()
            except Exception:
                self.errors += 1
                log.exception("watchdog look failed (%d so far); still watching", self.errors)

    def _look(self) -> None:
        if self._revive is not None and self._pgid() is None:
            try:
                self._revive()
                self._revive_failures = 0
            except Exception:  # keep watching; retry, backing off up to a minute
                self._revive_failures += 1
                log.exception("starting tritonserver again failed (%d in a row)",
                              self._revive_failures)
                self._stop_event.wait(min(60.0, 2.0 ** self._revive_failures))
            self.rebaseline()
            return
        dead = self.check()
        if not dead:
            return
        models = {s.model for s in dead}
        log.warning("python-backend stub(s) died: %s; healing %s",
                    ", ".join(sorted(f"{s.model}:{s.version}:{s.instance}" for s in dead)),
                    sorted(models))
        try:
            self._heal(models)
            self.heals += 1
        except Exception:  # keep watching; the next look retries
            log.exception("healing %s failed", sorted(models))
        self.rebaseline()
