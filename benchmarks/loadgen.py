"""The one closed-loop load generator every served system is measured with.

``concurrency`` worker threads each send a request, wait for its answer and send the next one
at once (closed loop: offered load = what the system sustains). Every system gets the same
images in the same order and the same client; only the :class:`Target` (how one request is
sent) differs. Responses are checked (shape and size), so a failing system shows up as errors,
never as speed. The client's own CPU use is measured and reported, since it shares the cores.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import numpy as np

from benchmarks.common import latency_stats

Sender = Callable[[object], None]


class Target:
    """How one request reaches one system. ``sender()`` is called once per worker thread."""

    name = "target"

    def sender(self) -> Sender:
        raise NotImplementedError

    def close(self) -> None:
        pass


class TritonTarget(Target):
    """A Triton model over gRPC (tritonclient): the ensemble (IMAGE bytes) or the attribute model
    alone (PIXELS tiles). One channel shared by all workers, as a real client would."""

    def __init__(self, url: str, model: str, input_name: str, output_name: str,
                 output_width: int) -> None:
        from tritonclient.grpc import InferenceServerClient

        self.name = f"triton-grpc:{model}"
        self.model, self.input_name, self.output_name = model, input_name, output_name
        self.output_width = output_width
        self._client = InferenceServerClient(url)

    def sender(self) -> Sender:
        from tritonclient.grpc import InferInput, InferRequestedOutput

        outputs = [InferRequestedOutput(self.output_name)]

        def send(payload) -> None:
            if isinstance(payload, (bytes, bytearray)):
                tensor = InferInput(self.input_name, [1, 1], "BYTES")
                tensor.set_data_from_numpy(np.array([[bytes(payload)]], dtype=np.object_))
            else:
                tensor = InferInput(self.input_name, [1, *payload.shape], "UINT8")
                tensor.set_data_from_numpy(payload[None])
            result = self._client.infer(self.model, [tensor], outputs=outputs,
                                        client_timeout=120)
            out = result.as_numpy(self.output_name)
            if out is None or out.shape != (1, self.output_width):
                raise RuntimeError(f"unexpected output shape {None if out is None else out.shape}")

        return send

    def close(self) -> None:
        self._client.close()


class HttpTarget(Target):
    """POST the encoded image (``application/octet-stream``); expect ``float32 [width]`` back.

    One keep-alive connection per worker thread (the stdlib client costs the least CPU here).
    """

    def __init__(self, url: str, output_width: int, name: str = "http") -> None:
        parts = urlsplit(url)
        self.name = name
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.expected_bytes = 4 * output_width

    def sender(self) -> Sender:
        state: dict[str, http.client.HTTPConnection] = {}

        def send(payload) -> None:
            conn = state.get("conn")
            if conn is None:
                conn = state["conn"] = http.client.HTTPConnection(self.host, self.port,
                                                                  timeout=120)
            try:
                conn.request("POST", self.path, body=bytes(payload),
                             headers={"Content-Type": "application/octet-stream"})
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                state.pop("conn", None)
                raise
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {body[:200]!r}")
            if len(body) != self.expected_bytes:
                raise RuntimeError(f"expected {self.expected_bytes} bytes of float32, "
                                   f"got {len(body)}: {body[:120]!r}")

        return send


@dataclass
class LoadResult:
    system: str
    concurrency: int
    requests: int  # completed without error inside the measurement window
    errors: int
    seconds: float
    throughput: float  # successful requests per second
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None
    client_cpu_cores: float  # this process's CPU use while measuring (it shares the machine)
    error_examples: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def run_closed_loop(target: Target, payloads: Sequence, concurrency: int, *,
                    duration_s: float = 20.0, warmup_s: float = 3.0, system: str | None = None,
                    max_errors: int = 1000) -> LoadResult:
    """Drive ``target`` with ``concurrency`` closed-loop workers for ``duration_s`` seconds.

    Only requests started after the warm-up and finished before the deadline count; the
    throughput is successful requests per second of the measurement window.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    error_count = 0
    t_start = time.perf_counter() + warmup_s
    t_end = t_start + duration_s
    stop = threading.Event()

    def worker() -> None:
        nonlocal error_count
        send = target.sender()
        while not stop.is_set():
            payload = payloads[next(counter) % len(payloads)]
            began = time.perf_counter()
            if began >= t_end:
                return
            try:
                send(payload)
                failed = None
            except Exception as exc:  # counted, never hidden
                failed = f"{type(exc).__name__}: {exc}"[:300]
            finished = time.perf_counter()
            if began < t_start or finished > t_end:
                continue
            with lock:
                if failed is None:
                    latencies.append((finished - began) * 1000.0)
                else:
                    error_count += 1
                    if len(errors) < 5:
                        errors.append(failed)
                    if error_count >= max_errors:
                        stop.set()
            if failed is not None:
                time.sleep(0.01)  # a dead server must not turn the client into a busy loop

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    while time.perf_counter() < t_start:
        time.sleep(0.01)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for t in threads:
        t.join(timeout=max(0.0, t_end - time.perf_counter()) + 180)
    stop.set()
    window = min(time.perf_counter(), t_end) - t_start
    cpu = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
    stats = latency_stats(latencies)
    return LoadResult(system=system or target.name, concurrency=concurrency,
                      requests=len(latencies), errors=error_count, seconds=window,
                      throughput=len(latencies) / window if window > 0 else 0.0,
                      client_cpu_cores=cpu, error_examples=errors, **stats)
