"""Progress for long runs: a tqdm bar on stderr, or nothing."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from tqdm import tqdm

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(total: int, unit: str, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A context yielding ``advance(done)``: moves a tqdm bar to ``done`` of ``total``.

    With ``enabled`` false (a quiet run, a small job) ``advance`` does nothing.

    Examples
    --------
    >>> with progress_bar(10, "cases", enabled=False) as advance:
    ...     advance(10)
    """
    if not enabled:
        yield lambda done: None
        return
    with tqdm(total=total, unit=f" {unit}", unit_scale=True, file=sys.stderr) as bar:
        yield lambda done: bar.update(done - bar.n)
