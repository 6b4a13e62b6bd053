"""MINRES and the scipy-delegated methods against scipy, on the same problems in one run.

Claims checked
    * krylovlab's native MINRES (one numba call per solve on CSR input) is
      faster than ``scipy.sparse.linalg.minres`` per iteration, and reaches
      the requested tolerance on the *true* residual (scipy stops on the
      looser estimate ‖r‖ ≤ rtol·‖A‖·‖x‖, so it often does fewer iterations
      and misses rtol·‖b‖; the table shows both).
    * The delegated methods (CGS, BiCG, QMR, TFQMR, LGMRES, GCROT) cost about
      what scipy costs: the wrapper adds validation, a final true-residual
      check and BLAS thread limiting, and must not be slower than scipy at
      scipy's best thread setting.

Each peer is timed with BLAS at one thread and as installed (the better
counts); each time is the minimum over repeats; the load average is read
before and after and printed with the table.

Usage: ``python bench/minres_vs_scipy.py [--quick | --full]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as ssl

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import krylovlab  # noqa: E402
from krylovlab import gallery  # noqa: E402
from _common import best_blas, header, loadavg, save, table, timeit  # noqa: E402


def _rel(A, x, b):
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def minres_rows(grid, rtol, repeat, precond):
    if precond:
        A = gallery.anisotropic_diffusion((grid, grid))
        M_k = krylovlab.Jacobi(A)
        M_s = sp.diags(1.0 / A.diagonal()).tocsr()
        name = f"anisotropic {grid}² + Jacobi"
    else:
        # shift halfway between the two smallest Laplacian eigenvalues: exactly one negative eigenvalue
        h = np.pi / (2 * (grid + 1))
        lam1, lam2 = 8 * np.sin(h) ** 2, 4 * np.sin(h) ** 2 + 4 * np.sin(2 * h) ** 2
        A = gallery.indefinite_symmetric((grid, grid), shift=0.5 * (lam1 + lam2))
        M_k = M_s = None
        name = f"indefinite {grid}² (1 negative eigenvalue)"
    n = A.shape[0]
    b = np.random.default_rng(0).standard_normal(n)
    solver = krylovlab.MINRES(A, rtol=rtol, M=M_k, maxiter=20 * n)
    t_k, res = timeit(lambda: solver.solve(b), repeat=repeat)
    its = {}

    def run_scipy():
        k = [0]
        x, info = ssl.minres(A, b, rtol=rtol, M=M_s, maxiter=20 * n, callback=lambda xk: k.__setitem__(0, k[0] + 1))
        its["n"] = k[0]
        return x, info

    t_s, (x_s, info_s), blas = best_blas(run_scipy, repeat=repeat)
    rows = [
        dict(problem=name, n=n, solver="krylovlab MINRES", time_s=t_k, iters=res.iterations,
             per_iter_us=1e6 * t_k / max(res.iterations, 1), true_rel_res=_rel(A, res.x, b), info=res.info,
             vs_scipy=""),
        dict(problem=name, n=n, solver=f"scipy minres (BLAS {blas})", time_s=t_s, iters=its["n"],
             per_iter_us=1e6 * t_s / max(its["n"], 1), true_rel_res=_rel(A, x_s, b), info=info_s, vs_scipy=""),
    ]
    rows[0]["vs_scipy"] = f"{t_s / t_k:.2f}x total, {rows[1]['per_iter_us'] / rows[0]['per_iter_us']:.2f}x per iter"
    return rows


def delegated_rows(grid, rtol, repeat):
    A = gallery.convection_diffusion((grid, grid))
    n = A.shape[0]
    b = np.random.default_rng(1).standard_normal(n)
    rows = []
    for name in ("cgs", "bicg", "qmr", "tfqmr", "lgmres", "gcrotmk"):
        t_k, (x_k, info_k) = timeit(lambda: getattr(krylovlab, name)(A, b, rtol=rtol), repeat=repeat)
        t_s, (x_s, info_s), blas = best_blas(lambda: getattr(ssl, name)(A, b, rtol=rtol), repeat=repeat)
        rows.append(dict(problem=f"convdiff {grid}²", n=n, solver=f"krylovlab.{name} (delegated)", time_s=t_k,
                         true_rel_res=_rel(A, x_k, b), info=info_k, vs_scipy=f"{t_s / t_k:.2f}x"))
        rows.append(dict(problem=f"convdiff {grid}²", n=n, solver=f"scipy {name} (BLAS {blas})", time_s=t_s,
                         true_rel_res=_rel(A, x_s, b), info=info_s, vs_scipy=""))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small sizes, a few minutes (default)")
    g.add_argument("--full", action="store_true", help="paper sizes")
    args = ap.parse_args(argv)
    grids = (64, 300, 1000) if args.full else (64, 200)
    repeat = 3
    load0 = loadavg()
    # warm-up: numba compile / cache load outside the timings
    krylovlab.MINRES(gallery.poisson((8, 8))).solve(np.ones(64))
    krylovlab.MINRES(gallery.poisson((8, 8)), M=krylovlab.Jacobi(gallery.poisson((8, 8)))).solve(np.ones(64))
    rows = []
    for grid in grids:
        rows += minres_rows(grid, 1e-8, repeat if grid < 150 else 1, precond=False)
    rows += minres_rows(128 if not args.full else 300, 1e-8, 1, precond=True)
    drows = delegated_rows(64 if not args.full else 300, 1e-8, 1 if args.full else repeat)
    load1 = loadavg()
    text = header("MINRES and delegated methods vs scipy")
    text += f"\nload average before / after: {load0:.2f} / {load1:.2f} (2 cores; >2 means other work was running)\n"
    text += "\n## MINRES, rtol = 1e-8\n\n" + table(rows, ["problem", "n", "solver", "time_s", "iters", "per_iter_us",
                                                         "true_rel_res", "info", "vs_scipy"])
    text += "\n\n## Delegated methods, rtol = 1e-8\n\n" + table(drows, ["problem", "n", "solver", "time_s",
                                                                      "true_rel_res", "info", "vs_scipy"])
    print(text)
    print(f"\nwritten to {save('minres_vs_scipy', text)}")


if __name__ == "__main__":
    main()
