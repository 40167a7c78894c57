"""The child entry point of ``heads.run_workers``: fits a group of heads, one after another.

Run as ``python -m fashiontag.model.fit_worker JOBS RESULTS``: ``JOBS`` holds
``[(name, features, labels, num_values, select_head kwargs), ...]`` (``heads.write_jobs``); the
fits go to ``RESULTS`` as ``{name: HeadFit}`` (``heads.write_fits``). Both are tensors and plain
values, read with ``weights_only=True``: nothing is unpickled.
"""

from __future__ import annotations

import sys

__all__: list[str] = []


def main(jobs_path: str, results_path: str) -> None:
    from fashiontag.model.heads import read_jobs, select_head, write_fits

    fits = {name: select_head(features, labels, num_values, **kwargs)
            for name, features, labels, num_values, kwargs in read_jobs(jobs_path)}
    write_fits(fits, results_path)


if __name__ == "__main__":
    main(*sys.argv[1:3])
