"""Shared timing helper for the benchmark scripts: medians over repeated runs."""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable


def median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Run ``fn`` ``repeats`` times; return the median wall time and all times (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, load {load:.2f}"
