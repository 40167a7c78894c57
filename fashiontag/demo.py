"""``make run``: start the real server, tag the bundled sample catalog, print a table, keep serving.

The sample catalog (``samples/``) holds real images: garment photos of photographers the model
never saw (``clothing/<type>_<id>.jpg``, named after the type people gave them, so the table can
show right and wrong), two public-domain photos, and two broken files that must come back as
per-image error records.
"""

from __future__ import annotations

import json
from pathlib import Path

from fashiontag.artifacts import SAMPLES_DIR
from fashiontag.client import TagClient, TagResult
from fashiontag.labels import image_files
from fashiontag.serving.run import stop_on_signals, wait_for_signal
from fashiontag.serving.server import ServerConfig, TritonServer
from fashiontag.taxonomy import CATEGORY_NAME, DEFAULT_TAXONOMY

__all__ = ["run_demo", "sample_files"]


def sample_files(samples: Path) -> list[Path]:
    return image_files(samples)


def _expected_category(path: Path) -> str | None:
    """Garment photo samples are named ``<type>_<id>.jpg`` after the type people gave them."""
    label = path.stem.split("_", 1)[0]
    category = DEFAULT_TAXONOMY.category
    return category.canonical(label) if category.canonical(label) in category.values else None


def _summary(result: TagResult) -> str:
    """The attributes that apply to the predicted garment, with a value."""
    if not result.ok:
        return f"ERROR ({result.error_type}): {result.error}"
    shown = []
    for name, v in result.attributes.visible.items():
        if name == CATEGORY_NAME:
            continue
        value = v.top[0][0] if v.top else v.value
        shown.append(f"{name}={value} {v.confidence:.2f}")
    return ", ".join(shown)


def print_table(results: list[TagResult], paths: list[Path]) -> None:
    correct = total = 0
    print(f"\n{'image':30s} {'garment type':20s} {'people said':12s} attributes that apply")
    print("-" * 130)
    for result, path in zip(results, paths, strict=False):
        expected = _expected_category(path)
        category = ""
        if result.ok:
            c = result.attributes[CATEGORY_NAME]
            category = f"{c.value} {c.confidence:.2f}"
            if expected:
                total += 1
                correct += c.value == expected
                category += " ✓" if c.value == expected else " ✗"
        print(f"{result.id[-30:]:30s} {category:20s} {expected or '':12s} {_summary(result)}")
    if total:
        print(f"\ngarment type right on {correct}/{total} sample photos of photographers the "
              "model never saw")


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
