"""fashiontag as shipped: the real tritonserver on a repository generated from a model file.

Any model file (FP32, INT8, ...) and any :class:`ServingSettings` become a system, which is what
the batching study and a second precision need: nothing else changes.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.loadgen import Target, TritonTarget
from benchmarks.systems.base import System
from fashiontag.protocol import ENSEMBLE_MODEL, IMAGE, PIXELS, PROBABILITIES
from fashiontag.serving.repository import ServingSettings, build_repository
from fashiontag.serving.server import ServerConfig, TritonServer


class FashiontagSystem(System):
    kind = "fashiontag"

    def __init__(self, model: Path, precision: str = "fp32",
                 serving: ServingSettings | None = None, name: str | None = None) -> None:
        super().__init__(model, precision)
        self.serving = serving or ServingSettings()
        self.name = name or ("fashiontag" if precision == "fp32" else f"fashiontag-{precision}")
        self.server: TritonServer | None = None
        self._output_width: int | None = None

    @property
    def settings(self) -> dict:
        s = self.serving
        return {"max_queue_delay_us": s.max_queue_delay_us, "max_batch_size": s.max_batch_size,
                "attribute_instances": s.attribute_instances,
                "attribute_threads": s.attribute_threads,
                "preprocess_instances": s.preprocess_instances,
                "allow_spinning": s.allow_spinning, "protocol": "gRPC (tritonclient)"}

    @property
    def grpc_url(self) -> str:
        assert self.server is not None, "start the system first"
        return self.server.grpc_url

    @property
    def output_width(self) -> int:
        if self._output_width is None:
            from fashiontag.onnxio.metadata import read_metadata

            self._output_width = read_metadata(self.model).taxonomy.total_values
        return self._output_width

    def start(self) -> None:
        work = self._make_workdir("ft-bench-")
        repository = build_repository(self.model, work / "repository", self.serving)
        self.server = TritonServer(ServerConfig(repository, grpc_port=0, http_port=0,
                                                metrics_port=0, log_path=work / "server.log"))
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        self._remove_workdir()

    def target(self, model: str = ENSEMBLE_MODEL) -> Target:
        """The ensemble (JPEG bytes in) or, with ``ATTRIBUTES_MODEL``, the model alone (tiles)."""
        input_name = IMAGE if model == ENSEMBLE_MODEL else PIXELS
        target = TritonTarget(self.grpc_url, model, input_name, PROBABILITIES, self.output_width)
        target.name = self.name if model == ENSEMBLE_MODEL else f"{self.name}:{model}"
        return target

    def pids(self) -> list[int]:
        return [self.server.process.pid] if self.server and self.server.process else []

    def statistics(self) -> dict:
        """Triton's own per-model counts: inferences vs executions shows the batches formed."""
        from tritonclient.grpc import InferenceServerClient

        client = InferenceServerClient(self.grpc_url)
        try:
            stats = client.get_inference_statistics(as_json=True)
        finally:
            client.close()
        out = {}
        for model in stats.get("model_stats", []):
            inferences = int(model.get("inference_count", 0))
            executions = int(model.get("execution_count", 0))
            out[model["name"]] = {"inferences": inferences, "executions": executions,
                                  "mean_batch": inferences / executions if executions else None}
        return out
