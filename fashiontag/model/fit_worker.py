"""The child entry point of ``heads.run_workers``: fits a group of heads, one after another.

Run as ``python -m fashiontag.model.fit_worker JOBS RESULTS``: ``JOBS`` is a pickle of
``[(name, features, labels, num_values, select_head kwargs), ...]``; the fits are pickled to
``RESULTS`` as ``{name: HeadFit}``.
"""

from __future__ import annotations

import pickle
import sys

__all__: list[str] = []


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
