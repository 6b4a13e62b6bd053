"""Neural-operator data generation: krylovlab datagen against per-sample peers (issue 8).

Darcy −∇·(a∇u) = 1, a = exp(GRF), 2D 128² and 3D 32³ (``--full``: 256², 64³),
rtol 1e-8.  Every strategy assembles and solves the same seeded samples
(sample i from ``default_rng([seed, i])``):

* independent scipy ``cg`` and ``gmres(restart=40)`` per sample (BLAS 1 thread);
* scipy ``splu`` per sample;
* pyamg smoothed aggregation + CG per sample (setup + solve);
* krylovlab GCRO-DR with carried recycle space, unsorted and SKR-sorted;
* krylovlab ``datagen`` with ``solver="auto"`` (includes feature ordering,
  calibration and writing the HDF5 file), 1 worker and 2 Dask workers.

Slow per-sample peers run on the first ``--peer-samples`` samples (GCRO-DR on
twice as many, as one recycling chain) and their total is extrapolated to N
(marked ``*``).  Prints a markdown table and
writes it to ``bench/results/datagen.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, loadavg, save, table  # noqa: E402

from krylovlab import datagen  # noqa: E402
from krylovlab.datagen.pipeline import sample_rng  # noqa: E402
from krylovlab.problems import Darcy  # noqa: E402


def systems(fam, seed, count):
    for i in range(count):
        yield fam.assemble(fam.sample(sample_rng(seed, i)))


def per_sample(name, fam, seed, count, solve):
    """Assemble and solve ``count`` samples independently; returns a result row."""
    iters, resid = [], []
    t0 = time.perf_counter()
    with threadpool_limits(1):
        for A, b in systems(fam, seed, count):
            x, it = solve(A, b)
            iters.append(it)
            resid.append(np.linalg.norm(b - A @ x) / np.linalg.norm(b))
    return {"strategy": name, "seconds": time.perf_counter() - t0, "count": count,
            "mean iters": float(np.mean(iters)), "max residual": float(np.max(resid))}


def scipy_cg(rtol):
    def solve(A, b):
        n = [0]
        x, info = spla.cg(A, b, rtol=rtol, maxiter=20 * A.shape[0], callback=lambda xk: n.__setitem__(0, n[0] + 1))
        return x, n[0]
    return solve


def scipy_gmres(rtol):
    def solve(A, b):
        n = [0]
        x, info = spla.gmres(A, b, rtol=rtol, restart=40, maxiter=400, callback_type="pr_norm",
                             callback=lambda r: n.__setitem__(0, n[0] + 1))
        return x, n[0]
    return solve


def splu(A, b):
    return spla.splu(A.tocsc()).solve(b), 0


def pyamg_cg(rtol):
    import pyamg

    def solve(A, b):
        ml = pyamg.smoothed_aggregation_solver(A)
        res = []
        x = ml.solve(b, tol=rtol, accel="cg", maxiter=500, residuals=res)
        return x, len(res) - 1
    return solve


def run_datagen(name, fam, seed, count, tmp, **kw):
    out = Path(tmp) / f"{name.replace(' ', '_')}.h5"
    t0 = time.perf_counter()
    s = datagen.generate(fam, count, out, seed=seed, progress=False, overwrite=True, **kw)
    return {"strategy": name, "seconds": time.perf_counter() - t0, "count": count,
            "mean iters": s.mean_iterations, "max residual": s.max_residual, "chosen": s.solver}


def case(fam, n_samples, peer_samples, seed, rtol, workers):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # warm up JIT compilation outside the timings
        datagen.generate(Darcy(grid=8, dim=fam.dim), 3, Path(tmp) / "warm.h5", progress=False, solver="cg")
        rows.append(per_sample("scipy cg", fam, seed, peer_samples, scipy_cg(rtol)))
        rows.append(per_sample("scipy gmres(40)", fam, seed, min(peer_samples, 10), scipy_gmres(rtol)))
        rows.append(per_sample("scipy splu", fam, seed, peer_samples, splu))
        rows.append(per_sample("pyamg SA-CG", fam, seed, peer_samples, pyamg_cg(rtol)))
        if importlib.util.find_spec("krylovlab.recycle.gcrodr"):
            count = min(n_samples, 2 * peer_samples)  # GMRES-type recycling is slow on these SPD systems
            for order in ("none", "skr"):
                label = "unsorted" if order == "none" else "sorted"
                rows.append(run_datagen(f"krylovlab gcrodr {label}", fam, seed, count, tmp, solver="gcrodr",
                                        order=order, rtol=rtol, shard_size=count))
        rows.append(run_datagen("krylovlab auto", fam, seed, n_samples, tmp, rtol=rtol))
        if workers > 1:
            rows.append(run_datagen(f"krylovlab auto, {workers} workers", fam, seed, n_samples, tmp, rtol=rtol,
                                    workers=workers))
    for r in rows:
        r["total (s)"] = r["seconds"] * n_samples / r["count"]
        r["samples/s"] = n_samples / r["total (s)"]
        if r["count"] != n_samples:
            r["strategy"] += " *"
    auto = next(r for r in rows if r["strategy"] == "krylovlab auto")
    others = [r for r in rows if not r["strategy"].startswith("krylovlab auto")]
    best_other = min(others, key=lambda r: r["total (s)"])
    for r in rows:
        r["auto speedup"] = r["total (s)"] / auto["total (s)"]
    return rows, auto, best_other


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="128² and 32³, 200 samples (default)")
    g.add_argument("--full", action="store_true", help="256² and 64³, 200 samples")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--peer-samples", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rtol", type=float, default=1e-8)
    p.add_argument("--grids", default=None, help="override the 2D,3D grid sizes, e.g. 32,8 for a smoke run")
    args = p.parse_args(argv)
    sizes = [(256, 2), (64, 3)] if args.full else [(128, 2), (32, 3)]
    if args.grids:
        g2, g3 = (int(v) for v in args.grids.split(","))
        sizes = [(g2, 2), (g3, 3)]
    text = [header("Data generation: Darcy, krylovlab datagen vs per-sample peers")]
    cols = ["strategy", "chosen", "total (s)", "samples/s", "mean iters", "max residual", "auto speedup"]
    for grid, dim in sizes:
        fam = Darcy(grid=grid, dim=dim)
        load0 = loadavg()
        rows, auto, best = case(fam, args.samples, args.peer_samples, args.seed, args.rtol, args.workers)
        scipy_best = min((r for r in rows if r["strategy"].startswith(("scipy cg", "scipy gmres"))),
                         key=lambda r: r["total (s)"])
        block = [f"\n## Darcy {dim}D, {grid}^{dim} (n = {fam.n}), {args.samples} samples, rtol {args.rtol:g}",
                 f"load average before/after: {load0:.2f} / {loadavg():.2f}; `*` = per-sample peer timed on "
                 f"{args.peer_samples} (gmres: 10) samples, total extrapolated\n",
                 table(rows, cols),
                 f"\nauto vs independent scipy CG/GMRES ({scipy_best['strategy']}): "
                 f"{scipy_best['total (s)'] / auto['total (s)']:.2f}x (target >= 3x); "
                 f"vs best other strategy ({best['strategy']}): {best['total (s)'] / auto['total (s)']:.2f}x "
                 f"(target >= 1.3x)"]
        par = [r for r in rows if "workers" in r["strategy"]]
        if par:
            block.append(f"{args.workers} workers vs 1: {auto['total (s)'] / par[0]['total (s)']:.2f}x throughput")
        print("\n".join(block), flush=True)
        text += block
    path = save("datagen", "\n".join(text))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
