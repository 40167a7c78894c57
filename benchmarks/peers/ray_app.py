"""Ray Serve peer for the benchmark: one replica with ``@serve.batch``, the same preprocessing and
onnxruntime settings as fashiontag. Started (and stopped with SIGTERM) by benchmarks/systems.

    .venv-peers/bin/python benchmarks/peers/ray_app.py --model artifacts/fashiontag.onnx --port P

Request: POST / with the encoded image as the body. Response: ``float32 [total_values]`` bytes,
or 400 for an image that cannot be decoded.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fashiontag.errors import ImageDecodeError  # noqa: E402
from fashiontag.images import preprocess_bytes  # noqa: E402
from fashiontag.protocol import PIXELS, PROBABILITIES  # noqa: E402
from fashiontag.runtimes import onnx_session  # noqa: E402


def make_deployment(args: argparse.Namespace):
    @serve.deployment(max_ongoing_requests=args.max_ongoing, num_replicas=args.replicas,
                      ray_actor_options={"num_cpus": 0})
    class Tagger:
        def __init__(self) -> None:
            self.session = onnx_session(args.model, threads=args.threads, spinning=False)

        @serve.batch(max_batch_size=args.max_batch, batch_wait_timeout_s=args.batch_wait_ms / 1e3)
        async def infer(self, blobs: list[bytes]) -> list[bytes | str]:
            tiles, good, out = [], [], [None] * len(blobs)
            for i, blob in enumerate(blobs):
                try:
                    tiles.append(preprocess_bytes(blob))
                    good.append(i)
                except ImageDecodeError as exc:
                    out[i] = str(exc)
            if tiles:
                probabilities = self.session.run([PROBABILITIES], {PIXELS: np.stack(tiles)})[0]
                for i, row in zip(good, probabilities, strict=True):
                    out[i] = np.ascontiguousarray(row, dtype=np.float32).tobytes()
            return out

        async def __call__(self, request: Request) -> Response:
            result = await self.infer(await request.body())
            if isinstance(result, str):
                return Response(result, status_code=400, media_type="text/plain")
            return Response(result, media_type="application/octet-stream")

    return Tagger


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--temp-dir", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-ongoing", type=int, default=64)  # default 5 caps batches at 5
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # a private local cluster on loopback: never join another cluster on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=args.temp_dir,
             _node_ip_address="127.0.0.1", object_store_memory=150 * 1024 * 1024,
             log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        serve.run(make_deployment(args).bind(), route_prefix="/", name="fashiontag")
        print("READY", flush=True)
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
