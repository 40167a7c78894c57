"""Run a server in the foreground until Ctrl-C / SIGTERM, then stop it cleanly."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fashiontag.serving.server import ServerConfig, TritonServer

__all__ = ["serve_forever", "stop_on_signals", "wait_for_signal"]


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set the yielded event instead of killing the process (restored on exit)."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_for_signal(server: TritonServer, poll_s: float = 1.0,
                    stop: threading.Event | None = None) -> int:
    """Block until SIGINT/SIGTERM (→ 0) or until the server dies on its own (→ 1).

    Pass ``stop`` from :func:`stop_on_signals` entered *before* announcing readiness, so a
    signal sent right after the announcement cannot arrive before the handler exists.
    """
    if stop is None:
        with stop_on_signals() as own:
            return wait_for_signal(server, poll_s, own)
    while not stop.wait(poll_s):
        if not server.is_running():
            print(f"tritonserver exited unexpectedly:\n{server.log_tail()}")
            return 1
    return 0


def serve_forever(config: ServerConfig) -> int:
    with stop_on_signals() as stop, TritonServer(config) as server:
        print(f"fashiontag serving: gRPC {server.grpc_url}  HTTP {server.http_url}  "
              f"metrics {server.metrics_url}  launcher metrics {server.launcher_metrics_url}\n"
              f"log: {server.log_path}\nCtrl-C to stop.", flush=True)
        code = wait_for_signal(server, stop=stop)
        print("stopping tritonserver ...", flush=True)
    return code
