"""``make run``: start the real server, tag the bundled sample catalog, print a table, keep serving.

The sample catalog (``samples/``) holds real images: Fashion-MNIST test photos (named after their
true category, so the table can show right and wrong), two public-domain photos, and two broken
files that must come back as per-image error records.
"""

from __future__ import annotations

import json
from pathlib import Path

from fashiontag.client import TagClient, TagResult
from fashiontag.serving.run import stop_on_signals, wait_for_signal
from fashiontag.serving.server import ServerConfig, TritonServer
from fashiontag.taxonomy import CATEGORY

__all__ = ["run_demo", "sample_files", "SAMPLES_DIR"]

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def sample_files(samples: Path) -> list[Path]:
    return sorted(p for p in samples.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)


def _slug(value: str) -> str:
    return value.lower().replace("/", "-").replace(" ", "-")


def _expected_category(path: Path) -> str | None:
    """Fashion-MNIST samples are named ``test<index>_<category-slug>.png``."""
    slug = path.stem.split("_", 1)[-1]
    return next((v for v in CATEGORY.values if _slug(v) == slug), None)


def _summary(result: TagResult, limit: int = 3) -> str:
    if not result.ok:
        return f"ERROR ({result.error_type}): {result.error}"
    others = [(k, v) for k, v in result.attributes.items() if k != CATEGORY.name and v.visible]
    others.sort(key=lambda kv: -kv[1].confidence)
    return ", ".join(f"{k}={v.value} {v.confidence:.2f}" for k, v in others[:limit])


def print_table(results: list[TagResult], paths: list[Path]) -> None:
    correct = total = 0
    print(f"\n{'image':34s} {'category':26s} {'expected':12s} most confident visible attributes")
    print("-" * 130)
    for result, path in zip(results, paths, strict=False):
        expected = _expected_category(path)
        category = ""
        if result.ok:
            c = result.attributes[CATEGORY.name]
            category = f"{c.value} {c.confidence:.2f}"
            if expected:
                total += 1
                correct += c.value == expected
                category += " ✓" if c.value == expected else " ✗"
        print(f"{result.id[-34:]:34s} {category:26s} {expected or '':12s} {_summary(result)}")
    if total:
        print(f"\ncategory correct on {correct}/{total} Fashion-MNIST test samples")


def run_demo(config: ServerConfig, samples: Path | None = None,
             out: Path = Path("out/sample_tags.jsonl"), once: bool = False) -> int:
    samples = samples or SAMPLES_DIR
    paths = sample_files(samples)
    if not paths:
        print(f"no images under {samples}")
        return 1
    with TritonServer(config) as server:
        print(f"tritonserver ready: gRPC {server.grpc_url}", flush=True)
        with TagClient(server.grpc_url) as client:
            items = [(str(p.relative_to(samples)), p) for p in paths]
            results = list(client.tag_many(items, concurrency=8))
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w") as f:
            for result, path in zip(results, paths, strict=False):
                f.write(json.dumps({**result.to_record(), "path": str(path)}) + "\n")
        print_table(results, paths)
        failed = sum(not r.ok for r in results)
        print(f"\n{len(results)} images tagged, {failed} per-image errors; records in {out}")
        if once:
            return 0
        with stop_on_signals() as stop:
            print(f"\nstill serving on {server.grpc_url} (gRPC) / {server.http_url} (HTTP); "
                  "Ctrl-C to stop.", flush=True)
            return wait_for_signal(server, stop=stop)
