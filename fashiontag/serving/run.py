"""Run a server in the foreground until Ctrl-C / SIGTERM, then stop it cleanly."""

from __future__ import annotations

import signal
import threading

from fashiontag.serving.server import ServerConfig, TritonServer

__all__ = ["serve_forever", "wait_for_signal"]


def wait_for_signal(server: TritonServer, poll_s: float = 1.0, banner: str | None = None) -> int:
    """Block until SIGINT/SIGTERM (→ 0) or until the server dies on its own (→ 1).

    ``banner`` is printed only once the handlers are installed: whoever waits for it (a test, a
    supervisor) may send SIGTERM straight away without killing the process mid-start.
    """
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if banner:
            print(banner, flush=True)
        while not stop.wait(poll_s):
            if not server.is_running():
                print(f"tritonserver exited unexpectedly:\n{server.log_tail()}")
                return 1
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_forever(config: ServerConfig) -> int:
    with TritonServer(config) as server:
        code = wait_for_signal(server, banner=(
            f"fashiontag serving: gRPC {server.grpc_url}  HTTP {server.http_url}  "
            f"metrics {server.metrics_url}\nlog: {server.log_path}\nCtrl-C to stop."))
        print("stopping tritonserver ...", flush=True)
    return code
