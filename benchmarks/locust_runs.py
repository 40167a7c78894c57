"""Headless locust runs (benchmarks/locustfile.py) at several user counts, bounded in time.

Each run writes locust's own CSV files (``locust_u<N>_stats.csv`` ...) and is summarised into
JSON: requests, failures (counted, never hidden), requests/s and latency percentiles.

    python benchmarks/locust_runs.py --host 127.0.0.1:8001 [--users 1,16,64] [--seconds 30]
    python benchmarks/locust_runs.py --smoke      # starts its own server, a few seconds
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.catalog import make_catalog  # noqa: E402
from benchmarks.common import (  # noqa: E402
    DEFAULT_MODEL,
    BenchmarkSetupError,
    catalog_blobs,
    new_results_dir,
    write_json,
)
from fashiontag.protocol import is_shed  # noqa: E402

LOCUSTFILE = ROOT / "benchmarks" / "locustfile.py"


def _locust() -> Path:
    exe = Path(sys.executable).parent / "locust"
    if not exe.exists():
        raise BenchmarkSetupError(f"{exe} is missing: pip install 'fashiontag[bench]' "
                                  "(make install does it)")
    return exe


def _number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_stats(path: Path) -> dict:
    """The ``Aggregated`` row of locust's ``*_stats.csv``."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    row = next(r for r in rows if r["Name"] == "Aggregated")
    return {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
            "requests_per_s": _number(row["Requests/s"]),
            "p50_ms": _number(row["50%"]), "p90_ms": _number(row["90%"]),
            "p99_ms": _number(row["99%"]), "mean_ms": _number(row["Average Response Time"]),
            "max_ms": _number(row["Max Response Time"])}


def run_locust(host: str, users: int, seconds: int, out: Path, images: Path,
               extra: Sequence[str] = ()) -> dict:
    """One headless run; ``extra`` goes to locust (e.g. the locustfile's ``--model-name``)."""
    prefix = out / f"locust_u{users}"
    cmd = [str(_locust()), "-f", str(LOCUSTFILE), "--host", host, "--headless",
           "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--stop-timeout", "30",
           "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
           "--exit-code-on-error", "0", "--images", str(images), *extra]
    log = out / f"locust_u{users}.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=ROOT)
        try:
            code = proc.wait(seconds + 90)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    stats = Path(f"{prefix}_stats.csv")
    summary_printed = "Response time percentiles" in log.read_text(errors="replace")
    if code == -9 and summary_printed and stats.exists():
        code = 0  # locust finished and wrote its CSVs, then hung on exit (gRPC under gevent)
    if code != 0 or not stats.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        return {"users": users, "error": f"locust exit {code}:\n{tail}"}
    result = {"users": users, "seconds": seconds, **parse_stats(stats)}
    failures = Path(f"{prefix}_failures.csv")
    kinds = []
    if failures.exists():
        with open(failures) as f:
            kinds = [{"error": r["Error"], "occurrences": int(r["Occurrences"])}
                     for r in csv.DictReader(f)]
    result["failure_kinds"] = kinds[:5]
    result["failures_shed"] = sum(k["occurrences"] for k in kinds if is_shed(k["error"]))
    result["failures_other"] = sum(k["occurrences"] for k in kinds if not is_shed(k["error"]))
    return result



def run(host: str, users: Sequence[int], seconds: int, out: Path, images: Path) -> list[dict]:
    return [run_locust(host, u, seconds, out, images) for u in users]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="gRPC host:port; default: start a server of our own")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--users", default="1,16,64")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    users = [1, 4] if args.smoke else [int(u) for u in args.users.split(",")]
    seconds = 3 if args.smoke else args.seconds
    out = args.out or new_results_dir()
    out.mkdir(parents=True, exist_ok=True)
    catalog_blobs(64)
    images = make_catalog(64)[0].parent
    if args.host:
        results = run(args.host, users, seconds, out, images)
    else:
        from benchmarks.systems import FashiontagSystem

        with FashiontagSystem(args.model) as system:
            results = run(system.grpc_url, users, seconds, out, images)
    write_json(out / "locust.json", results)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
