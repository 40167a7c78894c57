"""Turn one run's results into ratios, goal checks, a markdown table and a plot.

Everything here reads the run's JSON only, so a report can be redrawn from any results folder:

    python benchmarks/report.py benchmarks/results/<timestamp>
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LOW, HIGH = 1, 16  # the concurrencies the goals are stated at


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def by_concurrency(system: dict) -> dict[int, dict]:
    """concurrency → medians over rounds of throughput / latencies / CPU, plus total errors."""
    out: dict[int, dict] = {}
    for c in sorted({r["concurrency"] for r in system["runs"]}):
        runs = [r for r in system["runs"] if r["concurrency"] == c]
        out[c] = {key: _median([r.get(key) for r in runs])
                  for key in ("throughput", "p50_ms", "p90_ms", "p99_ms", "server_cpu_cores",
                              "client_cpu_cores", "ratio_to_in_process")}
        out[c]["errors"] = sum(r["errors"] for r in runs)
        out[c]["requests"] = sum(r["requests"] for r in runs)
        out[c]["rounds"] = len(runs)
    return out


def in_process_summary(results: dict) -> dict[str, dict]:
    """precision → medians over rounds of best in-process img/s and single-image p50."""
    out = {}
    for precision, rounds in results["reference"]["in_process"].items():
        out[precision] = {
            "best_images_per_s": _median([r["best_images_per_s"] for r in rounds]),
            "best_batch": rounds[-1]["best_batch"],
            "single_image_p50_ms": _median([r["single_image"]["p50_ms"] for r in rounds]),
        }
    return out


def goals(results: dict) -> list[dict]:
    """The issue's goals, each with its measured value; ``met`` is None when not measurable."""
    systems = {s["name"]: (s, by_concurrency(s)) for s in results["systems"]}
    ref = in_process_summary(results)
    checks: list[dict] = []
    ft = systems.get("fashiontag")
    peers = {n: v for n, v in systems.items() if v[0]["kind"] == "peer"}

    def add(goal: str, value, target: str, met) -> None:
        checks.append({"goal": goal, "value": value, "target": target, "met": met})

    if ft and HIGH in ft[1] and "fp32" in ref:
        ratio = ft[1][HIGH]["ratio_to_in_process"]
        add(f"fashiontag FP32 throughput at c{HIGH} / in-process best", ratio, ">= 0.95",
            None if ratio is None else ratio >= 0.95)
        p99 = ft[1][HIGH]["p99_ms"]
        for name, (_, rows) in peers.items():
            if HIGH not in rows:
                continue
            peer_p99, peer_tp = rows[HIGH]["p99_ms"], rows[HIGH]["throughput"]
            add(f"fashiontag p99 at c{HIGH} < {name} p99", [p99, peer_p99], "lower",
                None if None in (p99, peer_p99) else p99 < peer_p99)
            want = 2.0 if name == "ray-serve" else 1.25
            speedup = ft[1][HIGH]["throughput"] / peer_tp if peer_tp else None
            add(f"fashiontag / {name} throughput at c{HIGH}", speedup, f">= {want}",
                None if speedup is None else speedup >= want)
    if ft and LOW in ft[1] and "fp32" in ref:
        p50, single = ft[1][LOW]["p50_ms"], ref["fp32"]["single_image_p50_ms"]
        add(f"fashiontag p50 at c{LOW} - in-process single-image p50 (ms)",
            None if None in (p50, single) else p50 - single, "<= 3",
            None if None in (p50, single) else p50 - single <= 3.0)
    shipped = [v for n, v in systems.items() if v[0]["kind"] == "fashiontag"
               and v[0]["precision"] != "fp32"]
    best_peer = max((rows[HIGH]["throughput"] for _, rows in peers.values() if HIGH in rows),
                    default=None)
    if shipped and best_peer:
        s, rows = max(shipped, key=lambda v: v[1].get(HIGH, {}).get("throughput") or 0)
        speedup = rows[HIGH]["throughput"] / best_peer if HIGH in rows else None
        add(f"{s['name']} ({s['precision']}) / best FP32 peer throughput at c{HIGH}", speedup,
            ">= 2", None if speedup is None else speedup >= 2.0)
    else:
        add("shipped product (INT8) / best FP32 peer at c16", None, ">= 2", None)
    return checks


def _f(v, digits: int = 1) -> str:
    if v is None:
        return "—"
    if isinstance(v, list):
        return " vs ".join(_f(x, digits) for x in v)
    return f"{v:.{digits}f}"


def markdown(results: dict) -> str:
    """The results table, the reference limits and the goal checks as markdown."""
    ref = in_process_summary(results)
    levels = sorted({r["concurrency"] for s in results["systems"] for r in s["runs"]})
    head = ["system", "precision"]
    for c in levels:
        head += [f"c{c} img/s", f"c{c} p50 ms", f"c{c} p99 ms"]
    head += [f"c{HIGH} / in-process", f"server cores c{HIGH}", "errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in results["systems"]:
        rows = by_concurrency(s)
        cells = [s["name"], s["precision"]]
        for c in levels:
            r = rows.get(c, {})
            cells += [_f(r.get("throughput")), _f(r.get("p50_ms")), _f(r.get("p99_ms"))]
        hi = rows.get(HIGH, {})
        cells += [_f(hi.get("ratio_to_in_process"), 2), _f(hi.get("server_cpu_cores"), 2),
                  str(sum(r["errors"] for r in rows.values()))]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| reference | precision | img/s | single-image p50 ms |")
    lines.append("|---|---|---|---|")
    for precision, r in ref.items():
        lines.append(f"| in-process onnxruntime (decode+preprocess+model, best batch "
                     f"{r['best_batch']}) | {precision} | {_f(r['best_images_per_s'])} | "
                     f"{_f(r['single_image_p50_ms'])} |")
    cb = results["reference"].get("compute_bound")
    if cb:
        lines.append("")
        lines.append(f"Compute bound: {cb['gflop_per_image']:.3f} GFLOP per image "
                     f"({cb['macs_per_image'] / 1e6:.0f} M MACs, counted from the ONNX graph); "
                     f"measured sgemm peak {cb['peak_gflop_per_s']:.0f} GFLOP/s on 2 threads → "
                     f"at most {cb['images_per_s_at_peak']:.0f} img/s. Achieved:")
        for name, a in cb["achieved"].items():
            lines.append(f"- {name}: {a['images_per_s']:.1f} img/s = {a['gflop_per_s']:.1f} "
                         f"GFLOP/s = {a['percent_of_peak']:.0f} % of peak")
    prof = results.get("profile")
    if prof:
        lines.append("")
        lines.append(f"Where the CPU goes (fashiontag at c{prof['concurrency']}, CPU ms per image; "
                     f"in-process: decode+preprocess "
                     f"{prof['in_process_cpu_ms_per_image']['decode_preprocess']:.2f} + model "
                     f"{prof['in_process_cpu_ms_per_image']['model']:.2f} = "
                     f"{prof['in_process_cpu_ms_per_image']['total']:.2f}):")
        for role, ms in prof["cpu_ms_per_image"].items():
            lines.append(f"- {role}: {ms:.2f}")
        lines.append(f"- server total: {prof['server_cpu_ms_per_image']:.2f}")
        for role, top in prof.get("py_spy_top_self", {}).items():
            frames = ", ".join(f"{t['frame']} {t['percent']:.0f} %" for t in top[:3]
                               if "frame" in t)
            lines.append(f"- py-spy {role}: {frames or top}")
    lines.append("")
    lines.append("| goal | measured | target | met |")
    lines.append("|---|---|---|---|")
    for g in results.get("goals", []):
        met = {True: "yes", False: "**no**", None: "not measured"}[g["met"]]
        lines.append(f"| {g['goal']} | {_f(g['value'], 2)} | {g['target']} | {met} |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> Path:
    """Throughput vs p99 latency, one line per system (points = concurrency levels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for s in results["systems"]:
        rows = by_concurrency(s)
        pts = [(r["p99_ms"], r["throughput"], c) for c, r in rows.items()
               if r["p99_ms"] is not None]
        if not pts:
            continue
        xs, ys, cs = zip(*pts, strict=True)
        style = "-o" if s["kind"] == "fashiontag" else "--s"
        (line,) = ax.plot(xs, ys, style, label=f"{s['name']} ({s['precision']})")
        for x, y, c in pts:
            ax.annotate(f"c{c}", (x, y), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, color=line.get_color())
    for precision, r in in_process_summary(results).items():
        if r["best_images_per_s"]:
            ax.axhline(r["best_images_per_s"], color="grey", linestyle=":", linewidth=1)
            ax.annotate(f"in-process {precision} (best batch)", (0.01, r["best_images_per_s"]),
                        xycoords=("axes fraction", "data"), fontsize=7, color="grey",
                        xytext=(0, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("p99 latency (ms, log scale)")
    ax.set_ylabel("throughput (images/s)")
    meta = results.get("meta", {})
    ax.set_title(f"fashiontag vs peers — closed loop, {meta.get('cpu', '')} "
                 f"({meta.get('cores', '?')} cores, shared)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render(folder: Path) -> str:
    """(Re)write ``report.md`` and ``throughput_vs_p99.png`` from ``folder/results.json``."""
    results = json.loads((folder / "results.json").read_text())
    results["goals"] = goals(results)
    text = markdown(results)
    (folder / "report.md").write_text(text + "\n")
    if results["systems"]:
        plot(results, folder / "throughput_vs_p99.png")
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    print(render(parser.parse_args(argv).folder))


if __name__ == "__main__":
    main()
