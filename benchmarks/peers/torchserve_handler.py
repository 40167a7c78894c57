"""TorchServe handler for the peer benchmark: the same preprocessing and onnxruntime settings as
fashiontag (``fashiontag.images.preprocess_bytes``, ``onnx_session``), one ``run`` per batch.

Request body: encoded image bytes. Response: ``float32 [total_values]`` raw bytes, or HTTP 400
for an image that cannot be decoded (the other images of the batch are still answered).
Settings come from ``settings.json`` packed next to this file by the benchmark.
"""

import json
from pathlib import Path

import numpy as np

from fashiontag.errors import ImageDecodeError
from fashiontag.images import preprocess_bytes
from fashiontag.protocol import PIXELS, PROBABILITIES
from fashiontag.runtimes import onnx_session


class FashiontagHandler:
    def initialize(self, context) -> None:
        model_dir = Path(context.system_properties["model_dir"])
        settings = json.loads((model_dir / "settings.json").read_text())
        self.session = onnx_session(model_dir / settings["model_file"],
                                    threads=settings["threads"], spinning=settings["spinning"])
        self.initialized = True

    def handle(self, data, context):
        tiles, good, out = [], [], [None] * len(data)
        for i, row in enumerate(data):
            body = row.get("data") or row.get("body")
            try:
                tiles.append(preprocess_bytes(bytes(body)))
                good.append(i)
            except (ImageDecodeError, TypeError) as exc:
                context.set_response_status(400, str(exc), idx=i)
                out[i] = str(exc)
        if tiles:
            probabilities = self.session.run([PROBABILITIES], {PIXELS: np.stack(tiles)})[0]
            for i, row in zip(good, probabilities, strict=True):
                out[i] = np.ascontiguousarray(row, dtype=np.float32).tobytes()
                context.set_response_content_type(i, "application/octet-stream")
        return out
