"""Figure for docs/sketching.md: least-squares time versus problem height, krylovlab.lstsq vs LAPACK.

    python docs/scripts/sketching_height.py [--n 400] [--heights 4000,8000,16000,32000,64000]

Writes docs/img/sketching_height.png and prints the timings as a markdown table.  Dense A with
κ = 1e6 (as in bench/sketching.py); LAPACK drivers timed with BLAS at 1 thread and as installed
(the better counts); minimum over repeats.
"""

from __future__ import annotations

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg as sla  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from _common import best_blas, loadavg, table, timeit  # noqa: E402
from sketching import dense_problem  # noqa: E402

import krylovlab  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--heights", default="4000,8000,16000,32000,64000")
    args = ap.parse_args(argv)
    n = args.n
    heights = [int(h) for h in args.heights.split(",")]
    series = {"LAPACK gelsd": [], "LAPACK gelsy": [], "krylovlab lstsq (sparse-sign)": []}
    rows = []
    load0 = loadavg()
    for m in heights:
        A, b = dense_problem(m, n, 1e6, seed=m)
        tk, res = timeit(lambda: krylovlab.lstsq(A, b, rng=0), repeat=2, warmup=1)
        td, xd, _ = best_blas(lambda: sla.lstsq(A, b, lapack_driver="gelsd", check_finite=False)[0], repeat=1, warmup=0)
        ty, xy, _ = best_blas(lambda: sla.lstsq(A, b, lapack_driver="gelsy", check_finite=False)[0], repeat=1, warmup=0)
        series["LAPACK gelsd"].append(td)
        series["LAPACK gelsy"].append(ty)
        series["krylovlab lstsq (sparse-sign)"].append(tk)
        rd = np.linalg.norm(b - A @ xd)
        rows.append({"m": m, "n": n, "gelsd (s)": td, "gelsy (s)": ty, "lstsq (s)": tk, "its": res.iterations,
                     "residual gap vs gelsd": f"{(res.rnorm - rd) / rd:+.1e}", "speed-up vs gelsd": td / tk})
        print(rows[-1], flush=True)
    load1 = loadavg()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for (name, ts), mk in zip(series.items(), "osD"):
        ax.loglog(heights, ts, marker=mk, label=name)
    ax.set_xlabel("rows m (n = %d columns, κ(A) = 1e6)" % n)
    ax.set_ylabel("time (s), min over repeats")
    ax.set_title("Dense tall least squares: sketch-and-precondition vs LAPACK")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.text(0.01, 0.01, f"2-core shared machine, load avg {load0:.1f}→{load1:.1f}", fontsize=7, alpha=0.7)
    fig.tight_layout()
    out = os.path.join(ROOT, "docs", "img", "sketching_height.png")
    fig.savefig(out, dpi=120)
    print(table(rows))
    print(f"load average before/after: {load0:.2f} / {load1:.2f}; figure: {out}")


if __name__ == "__main__":
    main()
