"""AMG-preconditioned CG: krylovlab's cycle versus pyamg's on the same hierarchy.

Claim (issue 7): krylovlab's AMG-CG solve phase is at least 1.5x faster than
pyamg's ``ml.solve(accel="cg")`` on the same hierarchy, with the same
iteration count ±1.

Peers, all on one pyamg smoothed-aggregation hierarchy (symmetric
Gauss–Seidel, pinv coarse solve) built once per problem:
  * krylovlab ``AMGCG`` (whole PCG iteration and V-cycle in one numba call)
  * on grid problems, krylovlab ``AMGCG`` with ``AMG(sweep="red-black",
    precision="single")`` on the same hierarchy (not a like-for-like peer of
    pyamg's cycle: other sweeps, float32 cycle)
  * pyamg ``ml.solve(b, tol, accel="cg")``
  * scipy ``cg`` with ``M = ml.aspreconditioner()``
  * unpreconditioned scipy ``cg`` and krylovlab ``CG`` (for scale)
Peers are timed with BLAS at 1 thread and as installed; the better counts.

Usage: python bench/amg_precond.py [--quick | --full] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import best_blas, header, loadavg, save, table, timeit  # noqa: E402

import krylovlab  # noqa: E402
from krylovlab.amg import AMG, AMGCG  # noqa: E402
from krylovlab.gallery import poisson  # noqa: E402

RTOL = 1e-8
PLAIN_MAXITER = 3000


def anisotropic(n, eps=0.001, theta=np.pi / 8):
    from pyamg.gallery import stencil_grid
    from pyamg.gallery.diffusion import diffusion_stencil_2d

    st = diffusion_stencil_2d(epsilon=eps, theta=theta, type="FD")
    return sp.csr_matrix(stencil_grid(st, (n, n), format="csr"))


def problems(full: bool):
    import pyamg

    n2 = 1000 if full else 500
    n3 = 100 if full else 50
    na = 1000 if full else 500
    yield f"poisson2d {n2}²", poisson((n2, n2)), {}
    yield f"poisson3d {n3}³", poisson((n3, n3, n3)), {}
    yield f"anisotropic {na}² (ε=1e-3, θ=π/8)", anisotropic(na), {}
    for name in ("airfoil", "bar", "local_disc_galerkin_diffusion"):
        d = pyamg.gallery.load_example(name)
        A = sp.csr_matrix(d["A"])
        A = ((A + A.T) * 0.5).tocsr()  # the DG example is symmetric only to 1e-12
        opts = {"B": d["B"]} if name == "bar" else {}
        yield f"pyamg example {name}", A, opts


def relres(A, b, x):
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def run(full: bool, repeat: int, only: str | None = None, plain: bool = True):
    rows = []
    load0 = loadavg()
    for name, A, opts in problems(full):
        if only and only not in name:
            continue
        n = A.shape[0]
        b = np.random.default_rng(0).standard_normal(n)
        t0 = time.perf_counter()
        amg = AMG(A, "sa", **opts)
        setup = time.perf_counter() - t0
        ml = amg.ml
        solver = AMGCG(A, amg=amg, rtol=RTOL)
        solver.solve(b)  # JIT warm-up (cached after the first run)
        rep = repeat
        # our own thread setting is chosen like the peers' BLAS setting: both are timed, the better counts
        kl = {}
        for mode in (True, False):
            amg.parallel = mode
            kl[mode] = timeit(lambda: solver.solve(b), repeat=rep, warmup=0)
        amg.parallel = "auto"
        best_mode = min(kl, key=lambda m: kl[m][0])
        t_kl, res = kl[best_mode]
        rows.append(dict(problem=name, n=n, solver="krylovlab AMGCG", threads="2" if best_mode else "1",
                         time_s=t_kl, iters=res.iterations, relres=relres(A, b, res.x), vs_krylovlab=1.0,
                         setup_s=setup, levels=amg.levels, opcx=round(amg.operator_complexity, 2),
                         other_threads_s=kl[not best_mode][0]))
        # the grid options on the same hierarchy: red-black sweeps on the finest level, single-precision cycle
        rb = AMG(ml, sweep="red-black", precision="single") if amg.levels >= 2 else None
        if rb is not None and rb.red_black:
            fast = AMGCG(A, amg=rb, rtol=RTOL)
            fast.solve(b)
            kf = {}
            for mode in (True, False):
                rb.parallel = mode
                kf[mode] = timeit(lambda: fast.solve(b), repeat=rep, warmup=0)
            fmode = min(kf, key=lambda m: kf[m][0])
            t_f, res_f = kf[fmode]
            rows.append(dict(problem=name, n=n, solver="krylovlab AMGCG, red-black + single",
                             threads="2" if fmode else "1", time_s=t_f, iters=res_f.iterations,
                             relres=relres(A, b, res_f.x), vs_krylovlab=t_f / t_kl,
                             other_threads_s=kf[not fmode][0]))

        def pyamg_cg():
            h = []
            x = ml.solve(b, tol=RTOL, accel="cg", residuals=h, maxiter=500)
            return x, len(h) - 1

        t_py, (x, it), th = best_blas(pyamg_cg, repeat=rep, warmup=1)
        rows.append(dict(problem=name, n=n, solver="pyamg solve(accel='cg')", threads=th, time_s=t_py,
                         iters=it, relres=relres(A, b, x), vs_krylovlab=t_py / t_kl))
        M = ml.aspreconditioner()

        def scipy_pcg():
            k = [0]
            x, info = spla.cg(A, b, rtol=RTOL, M=M, maxiter=500, callback=lambda xk: k.__setitem__(0, k[0] + 1))
            return x, k[0]

        t_sp, (x, it), th = best_blas(scipy_pcg, repeat=rep, warmup=1)
        rows.append(dict(problem=name, n=n, solver="scipy cg + pyamg M", threads=th, time_s=t_sp,
                         iters=it, relres=relres(A, b, x), vs_krylovlab=t_sp / t_kl))

        if not plain:
            print(f"load now {loadavg():.2f}", flush=True)
            print(table(rows[-3:]), flush=True)
            continue

        def scipy_plain():
            k = [0]
            x, info = spla.cg(A, b, rtol=RTOL, maxiter=PLAIN_MAXITER,
                              callback=lambda xk: k.__setitem__(0, k[0] + 1))
            return x, k[0]

        # unpreconditioned runs are for scale only: one run, capped at PLAIN_MAXITER iterations
        # (relres shows when the cap was hit); BLAS threads make no difference to scipy cg
        # (perf-baseline.md, table 3d), so it runs at 1 thread only
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            t_pl, (x, it) = timeit(scipy_plain, repeat=1, warmup=0)
        rows.append(dict(problem=name, n=n, solver="scipy cg (no M)", threads="1 (only)", time_s=t_pl,
                         iters=it, relres=relres(A, b, x), vs_krylovlab=t_pl / t_kl))
        cg = krylovlab.CG(A, rtol=RTOL, maxiter=PLAIN_MAXITER)
        t_cg, r = timeit(lambda: cg.solve(b), repeat=1, warmup=0)
        rows.append(dict(problem=name, n=n, solver="krylovlab CG (no M)", threads="2 (numba)", time_s=t_cg,
                         iters=r.iterations, relres=relres(A, b, r.x), vs_krylovlab=t_cg / t_kl))
        print(f"load now {loadavg():.2f}", flush=True)
        print(table(rows[-5:]), flush=True)
    load1 = loadavg()
    return rows, load0, load1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="500² / 50³ grids (default)")
    g.add_argument("--full", action="store_true", help="1000² / 100³ grids (the issue's sizes)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", help="run only problems whose name contains this text")
    ap.add_argument("--no-plain", action="store_true", help="skip the unpreconditioned CG runs")
    args = ap.parse_args()
    rows, l0, l1 = run(args.full, args.repeat, args.only, not args.no_plain)
    cols = ["problem", "n", "solver", "threads", "time_s", "iters", "relres", "vs_krylovlab", "setup_s",
            "levels", "opcx", "other_threads_s"]
    text = (header("AMG-CG solve phase: krylovlab vs pyamg on the same SA hierarchy")
            + f"\nrtol = {RTOL}; time = solve phase only (hierarchy prebuilt), min over repeats; "
            f"vs_krylovlab = peer time / krylovlab time (> 1: krylovlab faster); "
            f"krylovlab is timed with threaded kernels and serial (parallel=True/False), the better counts and "
            f"other_threads_s is the other one.\n"
            f"load average before / after: {l0:.2f} / {l1:.2f} (2 cores; other engineers' jobs share them)\n\n"
            + table(rows, cols))
    print()
    print(text)
    name = "amg_precond" + ("_full" if args.full else "")
    if args.only or args.no_plain:
        name += "_partial"
    save(name, text)


if __name__ == "__main__":
    main()
