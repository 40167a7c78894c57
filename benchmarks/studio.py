"""The studio on a 5,000-image catalog: how long every page interaction takes, over HTTP.

A catalog of 5,000 real garment photos (hard links to the clothing photos, repeated to reach the
size) is tagged by a real tritonserver; thumbnails are made once beforehand (the studio caches
them); then each interaction a person has (grid pages, filters, the labelling page in catalog and
in suggested order, a label click, a thumbnail, the status poll) is timed 20 times through a real
HTTP server. The goal is 200 ms per interaction.

    python benchmarks/studio.py            # ~3 min on 2 cores (tagging 5,000 images)
    python benchmarks/studio.py --smoke    # 200 images
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import new_results_dir, write_json  # noqa: E402
from fashiontag.artifacts import SOURCE_REPOSITORY, checkout_artifacts  # noqa: E402

ARTIFACTS = checkout_artifacts()
GOAL_MS = 200.0


def make_catalog(folder: Path, n: int) -> Path:
    """``n`` hard links to the clothing photos (repeated as needed), created once."""
    from fashiontag.model.datasets import clothing

    photos = clothing.load()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        link = folder / f"{i:05d}.jpg"
        if not link.exists():
            os.link(photos[i % len(photos)].path, link)
    return folder


def _timed(url: str, data: bytes | None = None, headers: dict | None = None) -> float:
    request = urllib.request.Request(url, data=data, headers=headers or {},
                                     method="POST" if data is not None else "GET")
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        assert response.status == 200, url
    return (time.perf_counter() - start) * 1000.0


def main(argv: list[str] | None = None) -> dict:
    from werkzeug.serving import make_server

    from fashiontag.serving.server import ServerConfig, TritonServer, find_free_port
    from fashiontag.studio.app import StudioConfig, create_app

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.smoke:
        args.images, args.repeats = 200, 5
    catalog = make_catalog(ARTIFACTS.bench_catalog / f"studio-{args.images}", args.images)
    result: dict = {"images": args.images, "repeats": args.repeats, "goal_ms": GOAL_MS}
    with tempfile.TemporaryDirectory(prefix="fashiontag-studio-bench-") as tmp, \
            TritonServer(ServerConfig(SOURCE_REPOSITORY, grpc_port=0, http_port=0,
                                      metrics_port=0)) as server:
        port = find_free_port()
        cfg = StudioConfig(catalog=(catalog,), artifacts=Path(tmp), repository=SOURCE_REPOSITORY,
                           serve_url=server.grpc_url, port=port)
        app = create_app(cfg)
        studio = app.studio
        start = time.perf_counter()
        studio.tags.refresh()
        studio.tags.wait(1800)
        result["tagging_s"] = round(time.perf_counter() - start, 1)
        result["tagged"] = studio.tags.done
        start = time.perf_counter()
        for number in range(len(studio.catalog)):
            studio.catalog.thumbnail(number)
        result["thumbnails_s"] = round(time.perf_counter() - start, 1)
        http = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=http.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        post = {"Content-Type": "application/json", "X-CSRF-Token": cfg.csrf_token}
        label = json.dumps({"attribute": "category", "number": 7, "value": "Hoodie"}).encode()
        interactions = {
            "grid, first page": (f"{base}/", None, None),
            "grid, page 50": (f"{base}/?page=50", None, None),
            "grid, filtered by type": (f"{base}/?category=T-Shirt", None, None),
            "grid, filtered by attribute value": (
                f"{base}/?attribute=sleeve_length&value=Short+Sleeves", None, None),
            "attributes and versions": (f"{base}/attributes", None, None),
            "labelling page, catalog order": (f"{base}/label/category", None, None),
            "labelling page, most uncertain first": (
                f"{base}/label/category?order=suggested", None, None),
            "a label click": (f"{base}/api/label", label, post),
            "a thumbnail (cached)": (f"{base}/thumb/123", None, None),
            "status poll": (f"{base}/api/status", None, None),
        }
        timings = {}
        for name, (url, data, headers) in interactions.items():
            samples = [_timed(url, data, headers) for _ in range(args.repeats)]
            timings[name] = {"p50_ms": round(statistics.median(samples), 1),
                             "max_ms": round(max(samples), 1),
                             "within_goal": max(samples) <= GOAL_MS}
        http.shutdown()
    result["interactions"] = timings
    result["all_within_goal"] = all(t["within_goal"] for t in timings.values())
    for name, t in timings.items():
        print(f"{name:38s} p50 {t['p50_ms']:7.1f} ms   max {t['max_ms']:7.1f} ms")
    print(f"tagging {result['tagged']} images took {result['tagging_s']} s; thumbnails "
          f"{result['thumbnails_s']} s; all within {GOAL_MS:.0f} ms: {result['all_within_goal']}")
    write_json(args.out or new_results_dir() / "studio.json", result)
    return result


if __name__ == "__main__":
    main()
