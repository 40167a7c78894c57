"""The metrics fashiontag adds to Triton's own, by name: the one list the python models, the
launcher, the Grafana dashboard and the tests use (docs/serving.md, "Metrics").

Two places expose them. The python models' metrics are Triton custom metrics, on Triton's own
``/metrics`` port next to ``nv_inference_*`` (:mod:`fashiontag.serving.model_metrics`). The
watchdog lives in the launcher process, not in tritonserver, so the launcher serves its metrics
on a port of its own (:class:`LauncherMetrics`, Prometheus text format, stdlib only).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["MetricSpec", "DECODE_ERRORS", "INPUT_BYTES", "INPUT_IMAGES", "SERVED_VALUES",
           "TAXONOMY_INFO", "WATCHDOG_HEALS", "SERVER_RESTARTS", "WATCHDOG_ERRORS", "SERVER_UP",
           "MODEL_METRICS", "LAUNCHER_METRICS", "TRITON_METRICS", "SUMMARY_LATENCIES_FLAG",
           "NOT_APPLICABLE", "LauncherMetrics"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # "counter" | "gauge"
    help: str
    labels: tuple[str, ...] = ()


_MODEL = ("model", "version")
DECODE_ERRORS = MetricSpec("fashiontag_decode_errors_total", "counter",
                           "Images the server refused to decode, by reason "
                           "(fashiontag.errors.DECODE_ERROR_REASONS)", (*_MODEL, "reason"))
INPUT_BYTES = MetricSpec("fashiontag_input_bytes_total", "counter",
                         "Encoded image bytes received by the server's decoder", _MODEL)
INPUT_IMAGES = MetricSpec("fashiontag_input_images_total", "counter",
                          "Encoded images received by the server's decoder", _MODEL)
SERVED_VALUES = MetricSpec("fashiontag_served_values_total", "counter",
                           "Images answered, by attribute and its top value (not_applicable: the "
                           "garment type has no such attribute)", (*_MODEL, "attribute", "value"))
TAXONOMY_INFO = MetricSpec("fashiontag_taxonomy_info", "gauge",
                           "1 for each loaded attribute model version, labelled with its "
                           "taxonomy", (*_MODEL, "taxonomy_id", "fingerprint"))
WATCHDOG_HEALS = MetricSpec("fashiontag_watchdog_heals_total", "counter",
                            "Dead python-backend stubs healed (model reload or server restart)")
SERVER_RESTARTS = MetricSpec("fashiontag_server_restarts_total", "counter",
                             "tritonserver restarts by the launcher (heals and revivals)")
WATCHDOG_ERRORS = MetricSpec("fashiontag_watchdog_errors_total", "counter",
                             "Watchdog looks that failed unexpectedly (logged with a traceback)")
SERVER_UP = MetricSpec("fashiontag_server_up", "gauge",
                       "1 while the launcher's tritonserver process runs")
NOT_APPLICABLE = "not_applicable"

MODEL_METRICS = (DECODE_ERRORS, INPUT_BYTES, INPUT_IMAGES, SERVED_VALUES, TAXONOMY_INFO)
LAUNCHER_METRICS = (WATCHDOG_HEALS, SERVER_RESTARTS, WATCHDOG_ERRORS, SERVER_UP)
# p50..p999 latency summaries: Triton's endpoint otherwise has cumulative averages only. The
# launcher passes it; docker/Dockerfile and docker/k8s/deployment.yaml carry it (tests check).
SUMMARY_LATENCIES_FLAG = "--metrics-config=summary_latencies=true"
# Triton's own metrics the dashboard uses; the summaries need --metrics-config
# summary_latencies=true (ServerConfig.latency_summaries, on by default)
TRITON_METRICS = ("nv_inference_count", "nv_inference_exec_count", "nv_inference_request_success",
                  "nv_inference_request_failure", "nv_inference_queue_duration_us",
                  "nv_inference_compute_infer_duration_us", "nv_inference_request_summary_us",
                  "nv_inference_queue_summary_us", "nv_inference_compute_infer_summary_us",
                  "nv_gpu_utilization")


def exposition(values: dict[MetricSpec, float]) -> str:
    """Prometheus text format (version 0.0.4) for label-less metrics."""
    lines = []
    for spec, value in values.items():
        lines += [f"# HELP {spec.name} {spec.help}", f"# TYPE {spec.name} {spec.kind}",
                  f"{spec.name} {value:g}"]
    return "\n".join(lines) + "\n"


class LauncherMetrics:
    """Serves ``read()``'s values at ``http://host:port/metrics`` from a daemon thread."""

    def __init__(self, read: Callable[[], dict[MetricSpec, float]], host: str = "127.0.0.1",
                 port: int = 0) -> None:
        def handle(request: BaseHTTPRequestHandler) -> None:
            if request.path.split("?")[0] != "/metrics":
                request.send_error(404)
                return
            body = exposition(read()).encode()
            request.send_response(200)
            request.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)

        handler = type("Handler", (BaseHTTPRequestHandler,), {
            "do_GET": handle, "log_message": lambda *_: None})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="fashiontag-launcher-metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
