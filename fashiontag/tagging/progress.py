"""A progress bar with images/s and ETA on stderr (tqdm), or nothing when not wanted."""

from __future__ import annotations

import sys

__all__ = ["Progress"]


class Progress:
    """``update(ok)`` after each written record; the bar shows rate, ETA and failures."""

    def __init__(self, total: int | None, enabled: bool = True, description: str = "tagging"
                 ) -> None:
        self._bar = None
        self._failed = 0
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:  # the client extra brings tqdm; without it, run without a bar
            print("(install tqdm for a progress bar)", file=sys.stderr)
            return
        self._bar = tqdm(total=total, unit="img", desc=description, dynamic_ncols=True,
                         smoothing=0.05, mininterval=0.5, file=sys.stderr)

    def update(self, ok: bool) -> None:
        if self._bar is None:
            return
        if not ok:
            self._failed += 1
            self._bar.set_postfix(failed=self._failed, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
