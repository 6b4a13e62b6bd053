"""Shared helpers for the benchmark scripts: timing, machine load, tables, results files."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def loadavg() -> float:
    """1-minute load average (how busy the shared machine was)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def timeit(fn, repeat: int = 3, warmup: int = 1):
    """Minimum wall time of ``fn()`` over ``repeat`` runs (after ``warmup`` runs); returns (seconds, last result)."""
    out = None
    for _ in range(warmup):
        out = fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def best_blas(fn, repeat: int = 3, warmup: int = 1):
    """Time ``fn`` with BLAS limited to 1 thread and as installed; keep the faster (peers at their best)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        t1, out1 = timeit(fn, repeat, warmup)
    t2, out2 = timeit(fn, repeat, warmup)
    return (t1, out1, "1") if t1 <= t2 else (t2, out2, "as installed")


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Markdown table from a list of dicts (floats printed with 3 significant digits)."""
    columns = columns or list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def header(title: str) -> str:
    import numpy
    import scipy

    return (f"# {title}\n\nmachine: {platform.machine()}, {os.cpu_count()} cores, python {sys.version.split()[0]}, "
            f"numpy {numpy.__version__}, scipy {scipy.__version__}; load average at start {loadavg():.2f}\n")


def save(name: str, text: str) -> Path:
    """Write a result table to bench/results/<name>.md and return the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text + "\n")
    return path
