"""Locust load test for a fashiontag server over gRPC (tritonclient), with real catalog images.

Interactive (web UI on :8089) against any endpoint:

    locust -f benchmarks/locustfile.py --host localhost:8001

Headless, bounded in time, CSV out (what ``make bench`` runs via benchmarks/locust_runs.py):

    locust -f benchmarks/locustfile.py --host 127.0.0.1:8001 --headless -u 16 -r 16 -t 30s \
        --csv out/locust --images artifacts/bench-catalog/2000-480x360-s0

Each user is closed-loop (no wait between requests) and sends JPEG bytes to the ``fashiontag``
ensemble; a response counts as a success only if it carries one probability vector of the
served taxonomy's width. Failures (gRPC errors, wrong shapes) are reported by locust, not hidden.
"""

from __future__ import annotations

import grpc.experimental.gevent as grpc_gevent

# locust must come first: it monkey-patches the standard library for gevent; gRPC then needs
# its gevent integration before any channel exists.
import locust  # noqa: I001
from locust import User, constant, events, task

grpc_gevent.init_gevent()

import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import numpy as np  # noqa: E402
import tritonclient.grpc as triton_grpc  # noqa: E402

from fashiontag.artifacts import SAMPLES_DIR, checkout_artifacts  # noqa: E402
from fashiontag.labels import image_files  # noqa: E402
from fashiontag.protocol import is_shed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = checkout_artifacts()
ENSEMBLE_MODEL, IMAGE, PROBABILITIES = "fashiontag", "IMAGE", "PROBABILITIES"  # fashiontag.protocol


@events.quit.add_listener
def _exit_even_if_grpc_hangs(exit_code: int, **_kwargs) -> None:
    """gRPC under gevent hangs the interpreter's exit after locust has written its results (every
    run on this machine, measured: 15 s of every locust run went to this wait); a real OS
    thread ends the process if it has not exited 3 s after locust's own shutdown, by which
    point the summary is printed and the CSV files are closed."""
    from gevent import monkey

    real_sleep = monkey.get_original("time", "sleep")  # time.sleep is gevent's after patching

    def watchdog() -> None:
        real_sleep(3)
        os._exit(exit_code)

    real_thread = monkey.get_original("threading", "Thread")
    real_thread(target=watchdog, daemon=True).start()


@events.init_command_line_parser.add_listener
def _arguments(parser) -> None:
    parser.add_argument("--images", default=os.environ.get("FASHIONTAG_BENCH_IMAGES", ""),
                        help="folder of images to send (default: the benchmark catalog, "
                             "else samples/photos)")
    parser.add_argument("--model-name", default=ENSEMBLE_MODEL, help="Triton model to call")
    parser.add_argument("--max-images", type=int, default=256)
    parser.add_argument("--shed-backoff-ms", type=float, default=0.0,
                        help="after a request the server shed (queue full / queue timeout), wait "
                             "this long before the next one, as fashiontag's client does; 0 = "
                             "retry at once")


def served_width(client, model: str) -> int:
    """Width of PROBABILITIES: the config's dims, or (variable width, built for hot reload) the
    size of the taxonomy the config points at (the ensemble's ``taxonomy_model`` parameter)."""
    config = client.get_model_config(model, as_json=True)["config"]
    width = int(config["output"][0]["dims"][0])
    if width > 0:
        return width
    holder = config["parameters"].get("taxonomy_model", {}).get("string_value")
    if holder:
        config = client.get_model_config(holder, as_json=True)["config"]
    taxonomy = json.loads(config["parameters"]["taxonomy"]["string_value"])
    return sum(len(a["values"]) for a in taxonomy["attributes"])


def load_images(folder: str, limit: int) -> list[bytes]:
    """Encoded images from ``folder`` (or the benchmark catalog / the bundled sample photos)."""
    candidates = [Path(folder)] if folder else sorted(
        ARTIFACTS.bench_catalog.glob("*")) + [SAMPLES_DIR / "photos"]
    for path in candidates:
        files = image_files(path, recursive=False) if path.is_dir() else []
        if files:
            return [p.read_bytes() for p in files[:limit]]
    raise locust.exception.StopUser(f"no images found in {folder or candidates}")


class GrpcFailure(Exception):
    """tritonclient's exceptions repr() as ``InferenceServerException()``, and locust groups and
    writes failures by repr: this one carries the status and message into the failures CSV."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")

    def __repr__(self) -> str:
        return f"GrpcFailure({self.args[0]!r})"


class TritonGrpcUser(User):
    """Abstract locust user holding one tritonclient gRPC client; ``infer`` reports every call
    to locust (``request_type="grpc"``) with its latency, size and any exception."""

    abstract = True

    def __init__(self, environment) -> None:
        super().__init__(environment)
        url = (self.host or "127.0.0.1:8001").removeprefix("grpc://").removeprefix("http://")
        self.client = triton_grpc.InferenceServerClient(url)

    def infer(self, model: str, inputs: list, outputs: list, check=None):
        started = time.perf_counter()
        exception, length, result = None, 0, None
        try:
            result = self.client.infer(model, inputs, outputs=outputs, client_timeout=120)
            length = result.get_response().ByteSize()
            if check is not None:
                check(result)
        except Exception as exc:  # reported to locust as a failure
            exception = exc if str(exc) in repr(exc) else GrpcFailure(exc)
        self.environment.events.request.fire(
            request_type="grpc", name=model, response_time=(time.perf_counter() - started) * 1e3,
            response_length=length, exception=exception, context={})
        backoff = getattr(self.environment.parsed_options, "shed_backoff_ms", 0.0)
        if backoff and exception is not None and is_shed(str(exception)):
            gevent.sleep(backoff / 1000.0)
        return result

    def on_stop(self) -> None:
        self.client.close()


class FashiontagUser(TritonGrpcUser):
    """Tags catalog images through the ensemble, back to back (closed loop)."""

    wait_time = constant(0)
    _images: list[bytes] | None = None
    _counter = itertools.count()

    def on_start(self) -> None:
        options = self.environment.parsed_options
        cls = type(self)
        if cls._images is None:
            cls._images = load_images(getattr(options, "images", ""),
                                      getattr(options, "max_images", 256))
        self.model = getattr(options, "model_name", ENSEMBLE_MODEL)
        self.width = served_width(self.client, self.model)
        self.outputs = [triton_grpc.InferRequestedOutput(PROBABILITIES)]

    def _check(self, result) -> None:
        out = result.as_numpy(PROBABILITIES)
        if out is None or out.shape != (1, self.width):
            raise ValueError(f"expected PROBABILITIES [1, {self.width}], got "
                             f"{None if out is None else out.shape}")

    @task
    def tag(self) -> None:
        blob = self._images[next(self._counter) % len(self._images)]
        tensor = triton_grpc.InferInput(IMAGE, [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[blob]], dtype=np.object_))
        self.infer(self.model, [tensor], self.outputs, check=self._check)
