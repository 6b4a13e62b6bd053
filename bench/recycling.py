"""Recycled Krylov on sequences of Darcy systems (issue 3).

Problem: −∇·(a∇u) = 1 on the unit square, zero Dirichlet boundary, a = exp(g),
g a Gaussian random field (FNO convention α = 2.5, τ = 7), conservative
5-point finite differences (harmonic-mean faces, SPD; see ``_darcy.py``),
rtol = 1e-8, x0 = 0, one system after the other.

Compared in one run, on the same matrices:
krylovlab GCRO-DR(40, 20) carrying its recycle space (harmonic Ritz, the
default, and ``ritz="standard"``; each also with the recycle space refreshed
after every third cycle only, ``update_every=3``, and standard Ritz
every fourth), GMRES-DR(40, 20) (no carry-over),
GMRES(40), RCG; scipy gmres(restart=40), scipy gcrotmk(m=40,
k=20) with its ``CU`` carried (``discard_C=True``), scipy cg, krylovlab CG,
pyamg smoothed-aggregation PCG and scipy ``splu`` per system.  Each with no
preconditioner and with Jacobi where that applies.

Reported per method: matvecs per system (mean over the sequence, counted
through a LinearOperator wrapper for the scipy solvers, including the k
matvecs that rebuild C = A U), wall time per system (whole sequence divided
by N, minimum over repeats; peers at their better BLAS thread setting), the
worst true relative residual ‖b − A x‖/‖b‖, and the time ratio to the
reference peer of that block.

Also: one fixed matrix with 40 right-hand sides (skipping the A·U
recomputation), the matvecs GCRO-DR needs when handed each system's exact
20 smallest eigenvectors (an oracle bound for any carried space of that
size), the same bound for RCG (exact eigenvectors of each system's k
smallest eigenvalues as its deflation space, timed against plain CG: how
much deflating k vectors can gain at all on this machine), and the effect of
SKR's greedy ordering against a random order.

Usage: ``python bench/recycling.py [--quick | --full]`` (quick: 50² and
100² grids, 40 systems; full: adds 200²).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse.linalg as spla

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import best_blas, header, loadavg, save, table, timeit  # noqa: E402
from _darcy import darcy_sequence, grf  # noqa: E402

import krylovlab  # noqa: E402
from krylovlab import CG, GCRODR, GMRESDR, RCG, Jacobi, ordering  # noqa: E402

RTOL = 1e-8
BOTH_BLAS = False  # --full (or --both-blas): time peers with BLAS at 1 thread and as installed, keep the better


class Counting(spla.LinearOperator):
    """A with a matvec counter (for the scipy solvers' matvec counts; not used in timed runs)."""

    def __init__(self, A):
        super().__init__(A.dtype, A.shape)
        self.A, self.count = A, 0

    def _matvec(self, x):
        self.count += 1
        return self.A @ x.reshape(-1)


def jac_op(A):
    d = 1.0 / A.diagonal()
    return spla.LinearOperator(A.shape, matvec=lambda r: d * r.reshape(-1), dtype=A.dtype)


# ------------------------------------------------------------------ method runners
# each returns (list of x, list of matvecs or None) for the whole sequence
def kl_solver(make, pre):
    def run(mats, bs):
        s = make()
        xs, mv = [], []
        for A, b in zip(mats, bs):
            s.update_operator(A, M=Jacobi(A) if pre else None)
            r = s.solve(b)
            xs.append(r.x)
            mv.append(r.nmatvec)
        return xs, mv

    return run


def kl_gmres(pre):
    cls = krylovlab.get_solver_class("gmres")

    def run(mats, bs):
        xs, mv = [], []
        for A, b in zip(mats, bs):
            r = cls(A, restart=40, rtol=RTOL, maxiter=20000, M=Jacobi(A) if pre else None).solve(b)
            xs.append(r.x)
            mv.append(r.nmatvec)
        return xs, mv

    return run


def sp_gmres(pre):
    def run(mats, bs, count=False):
        xs, mv = [], []
        for A, b in zip(mats, bs):
            Aop = Counting(A) if count else A
            x, _ = spla.gmres(Aop, b, rtol=RTOL, atol=0.0, restart=40, maxiter=500, M=jac_op(A) if pre else None)
            xs.append(x)
            mv.append(Aop.count if count else None)
        return xs, mv

    return run


def sp_gcrotmk(pre):
    def run(mats, bs, count=False):
        CU = []
        xs, mv = [], []
        for A, b in zip(mats, bs):
            Aop = Counting(A) if count else A
            x, _ = spla.gcrotmk(Aop, b, rtol=RTOL, atol=0.0, m=40, k=20, CU=CU, discard_C=True, maxiter=1000,
                                M=jac_op(A) if pre else None)
            xs.append(x)
            mv.append(Aop.count if count else None)
        return xs, mv

    return run


def sp_cg(pre):
    def run(mats, bs, count=False):
        xs, mv = [], []
        for A, b in zip(mats, bs):
            Aop = Counting(A) if count else A
            x, _ = spla.cg(Aop, b, rtol=RTOL, atol=0.0, maxiter=20 * A.shape[0], M=jac_op(A) if pre else None)
            xs.append(x)
            mv.append(Aop.count if count else None)
        return xs, mv

    return run


def pyamg_pcg():
    import pyamg

    def run(mats, bs, count=False):
        xs, mv = [], []
        for A, b in zip(mats, bs):
            ml = pyamg.smoothed_aggregation_solver(A)
            res = []
            x = ml.solve(b, tol=RTOL, accel="cg", residuals=res, maxiter=500)
            xs.append(x)
            mv.append(len(res) - 1)  # PCG iterations (each also costs one V-cycle)
        return xs, mv

    return run


def sp_splu():
    def run(mats, bs, count=False):
        xs = [spla.splu(A.tocsc()).solve(b) for A, b in zip(mats, bs)]
        return xs, [0] * len(xs)

    return run


# --------------------------------------------------------------------------- driver
def cpu_timed(fn):
    """Wrap fn so that it also records its process CPU time (min kept by the caller)."""
    def run(*a, **k):
        c0 = time.process_time()
        out = fn(*a, **k)
        run.cpu = min(run.cpu, time.process_time() - c0)
        return out

    run.cpu = float("inf")
    return run


def measure(name, runner, mats, bs, repeat, peer, note=""):
    """Matvecs, min time over repeats, worst true residual for one method on the sequence."""
    N = len(mats)
    l0 = loadavg()
    raw, runner = runner, cpu_timed(runner)
    if peer:
        _, (xs, mv) = timeit(lambda: raw(mats, bs, count=True), repeat=1, warmup=0)
        if BOTH_BLAS:
            t, _, blas = best_blas(lambda: runner(mats, bs), repeat=repeat, warmup=0)
        else:  # quick mode: BLAS at 1 thread, the better or equal setting in every peer run measured here
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1):
                t, _ = timeit(lambda: runner(mats, bs), repeat=repeat, warmup=0)
            blas = "1"
    else:
        raw(mats[:2], bs[:2])  # numba warm-up (cached compiles)
        t, (xs, mv) = timeit(lambda: runner(mats, bs), repeat=repeat, warmup=0)
        blas = "1 (own limit)"
    worst = max(np.linalg.norm(b - A @ x) / np.linalg.norm(b) for A, b, x in zip(mats, bs, xs))
    mvs = np.asarray([m for m in mv if m is not None], dtype=float)
    print(f"  {name}: {t / N * 1e3:.1f} ms/sys wall, {runner.cpu / N * 1e3:.1f} ms/sys CPU", flush=True)
    return {"method": name, "matvecs/sys": float(mvs.mean()) if mvs.size else "-",
            "first / last": f"{int(mvs[0])} / {int(mvs[-1])}" if mvs.size else "-",
            "ms/sys": 1e3 * t / N, "CPU ms/sys": 1e3 * runner.cpu / N, "worst relres": f"{worst:.1e}", "BLAS": blas,
            "load": f"{l0:.1f}/{loadavg():.1f}", "_t": t, "note": note}


def block(title, rows, ref_name, ref_label):
    ref = next((r for r in rows if r["method"] == ref_name), None)
    for r in rows:
        r[f"time vs {ref_label}"] = f"{ref['_t'] / r['_t']:.2f}x" if ref else "-"
        r["CPU vs ref"] = f"{ref['CPU ms/sys'] / r['CPU ms/sys']:.2f}x" if ref else "-"
    cols = ["method", "matvecs/sys", "first / last", "ms/sys", f"time vs {ref_label}", "CPU ms/sys", "CPU vs ref",
            "worst relres", "BLAS", "load"]
    return f"### {title}\n\n" + table(rows, cols) + "\n"


def sequence_case(s, N, pre, repeat, out, with_gmres=True):
    mats, b, fields = darcy_sequence(s, N, seed=0)
    bs = [b] * N
    n = s * s
    tag = "Jacobi" if pre else "no preconditioner"
    rows = [
        measure("krylovlab GCRO-DR(40,20) carried", kl_solver(
            lambda: GCRODR(krylov_dim=40, recycle_dim=20, rtol=RTOL), pre), mats, bs, repeat, False),
        measure("krylovlab GCRO-DR(40,20) carried, standard Ritz", kl_solver(
            lambda: GCRODR(krylov_dim=40, recycle_dim=20, rtol=RTOL, ritz="standard"), pre), mats, bs, repeat, False),
        measure("krylovlab GCRO-DR(40,20) carried, update every 3rd cycle", kl_solver(
            lambda: GCRODR(krylov_dim=40, recycle_dim=20, rtol=RTOL, update_every=3), pre), mats, bs, repeat, False),
        measure("krylovlab GCRO-DR(40,20) carried, standard Ritz, update every 3rd cycle", kl_solver(
            lambda: GCRODR(krylov_dim=40, recycle_dim=20, rtol=RTOL, ritz="standard", update_every=3), pre),
            mats, bs, repeat, False),
        measure("krylovlab GCRO-DR(40,20) carried, standard Ritz, update every 4th cycle", kl_solver(
            lambda: GCRODR(krylov_dim=40, recycle_dim=20, rtol=RTOL, ritz="standard", update_every=4), pre),
            mats, bs, repeat, False),
        measure("krylovlab GMRES-DR(40,20) fresh", kl_solver(
            lambda: GMRESDR(krylov_dim=40, recycle_dim=20, rtol=RTOL), pre), mats, bs, repeat, False),
        measure("scipy gcrotmk(40,20) + CU", sp_gcrotmk(pre), mats, bs, repeat, True),
    ]
    if with_gmres:
        rows.insert(len(rows) - 1, measure("krylovlab GMRES(40)", kl_gmres(pre), mats, bs, repeat, False))
        rows.append(measure("scipy gmres(40)", sp_gmres(pre), mats, bs, repeat, True))
    out.append(block(f"Darcy {s}×{s} (n = {n}), {N} systems, {tag}: GMRES family", rows,
                     "scipy gcrotmk(40,20) + CU", "gcrotmk"))
    rows = [
        measure("krylovlab RCG(8)", kl_solver(lambda: RCG(recycle_dim=8, harvest_dim=24, rtol=RTOL), pre),
                mats, bs, repeat, False),
        measure("krylovlab RCG(8), learning from the first 10 systems",
                kl_solver(lambda: RCG(recycle_dim=8, harvest_dim=24, learn_solves=10, rtol=RTOL), pre),
                mats, bs, repeat, False),
        measure("krylovlab CG", kl_solver(lambda: CG(rtol=RTOL, maxiter=20 * n), pre), mats, bs, repeat, False),
        measure("scipy cg", sp_cg(pre), mats, bs, repeat, True),
    ]
    if not pre:
        rows += [measure("pyamg SA-PCG (setup per system)", pyamg_pcg(), mats, bs, max(1, repeat - 1), True),
                 measure("scipy splu per system", sp_splu(), mats, bs, repeat, True)]
    out.append(block(f"Darcy {s}×{s} (n = {n}), {N} systems, {tag}: SPD methods", rows, "scipy cg", "scipy cg"))
    return mats, fields


def oracle_case(s, N, out):
    """How low can a carried recycle space of 20 vectors bring the matvecs?

    GCRO-DR(40, 20) is handed, before every system, the exact eigenvectors of
    that system's 20 smallest eigenvalues (`GCRODR.set_recycle_space`; eigsh in
    shift-invert mode, not timed).  This is an oracle, not a method: no space
    learned from earlier systems can be expected to deflate better.  The k
    matvecs of C = A U are counted, as for the carried space.
    """
    mats, b, _ = darcy_sequence(s, N, seed=0)
    rows = []
    for ritz in ("harmonic", "standard"):
        carried = GCRODR(krylov_dim=40, recycle_dim=20, rtol=RTOL, ritz=ritz)
        oracle = GCRODR(krylov_dim=40, recycle_dim=20, rtol=RTOL, ritz=ritz)
        mv_c, mv_o = [], []
        for A in mats:
            mv_c.append(carried.solve(b, A=A).nmatvec)
            _, vecs = spla.eigsh(A, k=20, sigma=0, which="LM")
            oracle.update_operator(A)
            oracle.set_recycle_space(vecs)
            r = oracle.solve(b)
            assert r.converged and np.linalg.norm(b - A @ r.x) <= 1.001 * RTOL * np.linalg.norm(b)
            mv_o.append(r.nmatvec)
        rows.append({"Ritz vectors": ritz, "carried (all / excl. first)": f"{np.mean(mv_c):.1f} / {np.mean(mv_c[1:]):.1f}",
                     "oracle: exact eigenvectors of each A": f"{np.mean(mv_o):.1f}",
                     "carried excl. first ÷ oracle": f"{np.mean(mv_c[1:]) / np.mean(mv_o):.3f}"})
        print(f"  oracle {ritz}: carried {np.mean(mv_c):.1f}, oracle {np.mean(mv_o):.1f}", flush=True)
    out.append(f"### Darcy {s}×{s}, {N} systems, no preconditioner: GCRO-DR(40,20) matvecs/system against an "
               "oracle recycle space\n\nThe oracle gets, before each system, the exact eigenvectors of that "
               "system's 20 smallest eigenvalues as U (C = A U recomputed and counted, 20 matvecs). No carried "
               "space of 20 vectors can be expected to do better.\n\n"
               + table(rows, list(rows[0])) + "\n")


def rcg_oracle_case(s, N, repeat, out, dims=(4, 8, 16)):
    """What deflated CG can gain over CG here, with the best deflation space there is.

    RCG is handed, before every system, the exact eigenvectors of that
    system's k smallest eigenvalues (`RCG.set_deflation_space`, eigsh in
    shift-invert mode, not timed; ``learn_solves=0``), and timed against
    krylovlab CG and the learning RCG on the same systems.  The k matvecs of
    A W are counted.  Each iteration of deflated CG reads k extra vectors
    (A W) besides CG's own work, so its time per matvec grows with k while the
    matvecs saved shrink with k: the rows show the balance.
    """
    mats, b, _ = darcy_sequence(s, N, seed=0)
    bs = [b] * N
    kmax = max(dims)
    vecs = {id(A): spla.eigsh(A, k=kmax, sigma=0, which="LM")[1] for A in mats}

    def oracle(k):
        def run(mats, bs):
            solver = RCG(recycle_dim=k, learn_solves=0, rtol=RTOL)
            xs, mv = [], []
            for A, b in zip(mats, bs):
                solver.update_operator(A)
                solver.set_deflation_space(vecs[id(A)][:, :k])
                r = solver.solve(b)
                xs.append(r.x)
                mv.append(r.nmatvec)
            return xs, mv

        return run

    n = s * s
    rows = [measure("krylovlab CG", kl_solver(lambda: CG(rtol=RTOL, maxiter=20 * n), False), mats, bs, repeat, False),
            measure("krylovlab RCG(8), learning from the first 10 systems",
                    kl_solver(lambda: RCG(recycle_dim=8, harvest_dim=24, learn_solves=10, rtol=RTOL), False),
                    mats, bs, repeat, False)]
    rows += [measure(f"RCG({k}) oracle: exact eigenvectors of each A", oracle(k), mats, bs, repeat, False)
             for k in dims]
    ref = rows[0]
    for r in rows:
        r["CG matvecs ÷ these"] = f"{ref['matvecs/sys'] / r['matvecs/sys']:.2f}x"
        r["time vs CG"] = f"{ref['_t'] / r['_t']:.2f}x"
        r["µs per matvec"] = f"{1e3 * r['ms/sys'] / r['matvecs/sys']:.1f}"
    cols = ["method", "matvecs/sys", "CG matvecs ÷ these", "ms/sys", "time vs CG", "µs per matvec", "worst relres", "load"]
    out.append(f"### Darcy {s}×{s} (n = {n}), {N} systems, no preconditioner: deflated CG against CG, with an "
               "oracle deflation space\n\nThe oracle rows get, before each system, the exact eigenvectors of its "
               "k smallest eigenvalues (A W recomputed and counted, k matvecs). Time vs CG above 1 means faster "
               "than CG.\n\n" + table(rows, cols) + "\n")


def fixed_matrix_case(s, N, repeat, out):
    mats, _, _ = darcy_sequence(s, 1, seed=1)
    A = mats[0]
    rng = np.random.default_rng(7)
    h = 1.0 / (s + 1)
    bs = [h * h * np.exp(grf(s + 2, rng))[1:-1, 1:-1].ravel() for _ in range(N)]
    mats = [A] * N  # the same object every time

    def forced(make):
        def run(ms, bb):
            slv = make()
            xs, mv = [], []
            for Ai, b in zip(ms, bb):
                slv.update_operator(Ai, same_operator=False)
                r = slv.solve(b)
                xs.append(r.x)
                mv.append(r.nmatvec)
            return xs, mv

        return run

    def splu_once(ms, bb, count=False):
        lu = spla.splu(ms[0].tocsc())
        return [lu.solve(b) for b in bb], [0] * len(bb)

    rows = [
        measure("GCRO-DR(40,20), same A (C = AU reused)", kl_solver(
            lambda: GCRODR(krylov_dim=40, recycle_dim=20, rtol=RTOL), False), mats, bs, repeat, False),
        measure("GCRO-DR(40,20), C = AU recomputed", forced(
            lambda: GCRODR(krylov_dim=40, recycle_dim=20, rtol=RTOL)), mats, bs, repeat, False),
        measure("GMRES-DR(40,20) fresh", kl_solver(
            lambda: GMRESDR(krylov_dim=40, recycle_dim=20, rtol=RTOL), False), mats, bs, repeat, False),
        measure("RCG(8), same A (AW reused)", kl_solver(
            lambda: RCG(recycle_dim=8, harvest_dim=24, rtol=RTOL), False), mats, bs, repeat, False),
        measure("krylovlab CG", kl_solver(lambda: CG(rtol=RTOL, maxiter=20 * A.shape[0]), False), mats, bs,
                repeat, False),
        measure("scipy gcrotmk(40,20) + CU", sp_gcrotmk(False), mats, bs, repeat, True),
        measure("scipy splu, one factorisation", splu_once, mats, bs, repeat, True),
    ]
    out.append(block(f"One Darcy matrix {s}×{s}, {N} right-hand sides (GRF sources), no preconditioner", rows,
                     "scipy gcrotmk(40,20) + CU", "gcrotmk"))


def sorting_case(s, N, out, seed=0):
    mats, b, fields = darcy_sequence(s, N, seed=seed)
    feats = np.stack([f.ravel() for f in fields])
    orders = {
        "generation order": np.arange(N),
        "random order": np.random.default_rng(seed + 1).permutation(N),
        "SKR greedy (fields)": ordering.greedy_order(feats),
        "scalable (FFT-PCA + Hilbert + greedy)": ordering.scalable_order(
            ordering.fft_features(fields), group_size=max(2, N // 4)),
    }
    rows = []
    for name, perm in orders.items():
        slv = GCRODR(krylov_dim=40, recycle_dim=20, rtol=RTOL)
        mv = [slv.solve(b, A=mats[i]).nmatvec for i in perm]
        rows.append({"order": name, "tour length": ordering.tour_length(feats, perm),
                     "matvecs/sys": float(np.mean(mv)), "matvecs/sys (excl. first)": float(np.mean(mv[1:]))})
    out.append(f"### Ordering, Darcy {s}×{s}, {N} systems, GCRO-DR(40,20), no preconditioner\n\n"
               + table(rows) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="50² and 100² grids, 40 systems (default)")
    g.add_argument("--full", action="store_true", help="also 200² grids")
    p.add_argument("--systems", type=int, default=40)
    p.add_argument("--sizes", type=int, nargs="*", help="grid sides to run (default 50 100, --full adds 200)")
    p.add_argument("--no-gmres-above", type=int, default=10**9,
                   help="skip the slow GMRES(40) rows for grids larger than this side")
    p.add_argument("--skip-extra", action="store_true", help="skip the fixed-matrix and ordering cases")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--both-blas", action="store_true", help="time peers at both BLAS settings (default with --full)")
    args = p.parse_args(argv)
    global BOTH_BLAS
    BOTH_BLAS = args.full or args.both_blas
    sizes = args.sizes or ([50, 100] + ([200] if args.full else []))
    N = args.systems
    t0 = time.perf_counter()
    out = [header("Recycled Krylov on Darcy sequences (bench/recycling.py)")]
    out.append(f"rtol = {RTOL}, x0 = 0, {N} systems; times are per system (sequence total / N), minimum over "
               f"{args.repeat} repeat(s); peers at their better BLAS setting (column BLAS; quick mode uses 1 thread, "
               "the better or equal setting in every peer measurement of the performance baseline); load = 1-min load "
               "average before/after each row (2 cores, shared machine).  CPU ms/sys is the process CPU time "
               "(minimum over the timed runs), reported because the machine was oversubscribed: wall time "
               "then mostly measures the scheduler.\n")
    for s in sizes:
        for pre in (False, True):
            sequence_case(s, N, pre, args.repeat, out, with_gmres=s <= args.no_gmres_above)
            print(out[-2], out[-1], sep="\n", flush=True)
    if not args.skip_extra:
        for s in sizes:
            fixed_matrix_case(s, N, args.repeat, out)
            print(out[-1], flush=True)
        for s in sizes:
            oracle_case(s, N, out)
            print(out[-1], flush=True)
        for s in sizes:
            rcg_oracle_case(s, N, args.repeat, out)
            print(out[-1], flush=True)
        sorting_case(min(sizes), N, out)
        print(out[-1], flush=True)
    out.append(f"total bench time {time.perf_counter() - t0:.0f} s; load average at end {loadavg():.2f}")
    text = "\n".join(out)
    path = save("recycling" if sizes == [50, 100] or args.full else "recycling_" + "_".join(map(str, sizes)), text)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
