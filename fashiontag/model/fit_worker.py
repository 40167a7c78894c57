"""A worker process for ``heads.select_heads``: fits a group of heads, one after another.

Run as ``python -m fashiontag.model.fit_worker JOBS RESULTS``: ``JOBS`` is a pickle of
``[(name, features, labels, num_values, select_head kwargs), ...]``; the fits are pickled to
``RESULTS`` as ``{name: HeadFit}``. Files, not pipes, so nothing a library prints can corrupt them.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["run_workers"]


def run_workers(groups: list[list[tuple]]) -> dict:
    """One worker per group, all at once; the union of their fits, or the first failure."""
    with tempfile.TemporaryDirectory(prefix="fashiontag-fit-") as tmp:
        procs = []
        for i, group in enumerate(groups):
            jobs, results = Path(tmp) / f"jobs-{i}.pkl", Path(tmp) / f"fits-{i}.pkl"
            with open(jobs, "wb") as f:
                pickle.dump(group, f, protocol=pickle.HIGHEST_PROTOCOL)
            cmd = [sys.executable, "-m", "fashiontag.model.fit_worker", str(jobs), str(results)]
            procs.append((subprocess.Popen(cmd, stderr=subprocess.PIPE), results, group))
        fits, errors = {}, []
        for proc, results, group in procs:
            _, stderr = proc.communicate()
            if proc.returncode != 0:
                names = [job[0] for job in group]
                errors.append(f"fitting {names} failed (exit {proc.returncode}):\n"
                              f"{stderr.decode(errors='replace')[-2000:]}")
                continue
            with open(results, "rb") as f:
                fits.update(pickle.load(f))
        if errors:
            raise RuntimeError("\n".join(errors))
        return fits


def main(jobs_path: str, results_path: str) -> None:
    from fashiontag.model.heads import select_head

    with open(jobs_path, "rb") as f:
        jobs = pickle.load(f)
    fits = {name: select_head(features, labels, num_values, **kwargs)
            for name, features, labels, num_values, kwargs in jobs}
    with open(results_path, "wb") as f:
        pickle.dump(fits, f, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    main(*sys.argv[1:3])
