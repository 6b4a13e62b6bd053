"""Learning to Relax (Khodak et al., ICLR 2024): SOR's ω learned across a sequence of systems.

Three parts, one run:

1. Synthetic SOR (the paper's setup): A_t = 5-point Laplacian on a 10×10 grid
   + c_t·I, c_t = −0.15 + 0.6·Beta(0.5, 1.5) (high variance) or
   −0.15 + 0.6·Beta(2, 6) (low variance); b_t a standard Gaussian truncated to
   ‖b‖ ≤ √n; SOR from x0 = 0 to ‖r‖ ≤ 1e-8‖b‖, at most 10 000 sweeps; 5 000
   instances.  Mean iterations per instance and total wall time for ω = 1,
   Young's ω (of the mean matrix), the best fixed ω in hindsight, Tsallis-INF,
   binned Tsallis-INF, ChebCB and the per-instance optimal ω (golden-section
   search).  The learners run through `krylovlab.SOR` exactly as a user
   would; the oracles (best fixed, per-instance) evaluate many ω per
   instance in a batched numba loop, and their time includes that search.
2. 2D heat equation, Crank–Nicolson, κ(t) = max(0.1 sin 2πt, −10 sin 2πt),
   100×100 grid (n = 99² = 9 801), SSOR-preconditioned CG (`krylovlab.CG`
   with `krylovlab.SSOR`), warm-started; learned ω vs ω = 1 and the best
   fixed ω.
3. Kernel speed: one forward SOR sweep on the 1000×1000 Poisson matrix,
   krylovlab's numba `sor_sweep` vs pyamg's compiled sweeps.

Usage: ``python bench/learning_to_relax.py [--quick | --full]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numba as nb
import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import header, loadavg, save, table  # noqa: E402

import krylovlab  # noqa: E402
from krylovlab.gallery import poisson  # noqa: E402
from krylovlab.kernels.cpu import _relax as K  # noqa: E402
from krylovlab.relax import SOR, SSOR, BinnedTsallisINF, ChebCB, TsallisINF, young_omega  # noqa: E402
from krylovlab.relax.bandit import DEFAULT_ARMS  # noqa: E402

TOL = 1e-8
MAXITER = 10_000
CONTEXT_RANGE = (-0.15, 0.65)  # what the learners are told (as in the paper)


# ---------------------------------------------------------------------------------- instances
def instances(T, case, seed):
    rng = np.random.default_rng(seed)
    a, b = (0.5, 1.5) if case == "high" else (2.0, 6.0)
    c = -0.15 + 0.6 * rng.beta(a, b, size=T)
    n = 100
    B = np.empty((T, n))
    for t in range(T):
        while True:  # standard Gaussian, radially truncated to ‖b‖ ≤ √n
            v = rng.standard_normal(n)
            if v @ v <= n:
                B[t] = v
                break
    return c, B


@nb.njit(cache=True)
def _shifted(data, diagpos, c):
    d = data.copy()
    for p in diagpos:
        d[p] += c
    return d


@nb.njit(parallel=True, cache=True)
def iteration_table(indptr, indices, data, diagpos, cs, B, omegas):
    """Iterations of SOR (forward, x0 = 0) for every instance × ω; failures count MAXITER."""
    T, W = cs.shape[0], omegas.shape[0]
    n = B.shape[1]
    out = np.empty((T, W), np.int64)
    for t in nb.prange(T):
        d = _shifted(data, diagpos, cs[t])
        x = np.zeros(n)
        xprev = np.empty(n)
        hist = np.empty(0)
        tol = TOL * np.sqrt(np.sum(B[t] * B[t]))
        for w in range(W):
            x[:] = 0.0
            it, code, rn, sw = K.sor_solve(indptr, indices, d, x, B[t], omegas[w], tol, MAXITER, 0, hist, xprev)
            out[t, w] = it if code == K.CODE_RTOL else MAXITER
    return out


@nb.njit(parallel=True, cache=True)
def golden_optimal(indptr, indices, data, diagpos, cs, B, lo, hi, nevals):
    """Per-instance golden-section search of the iteration count over ω ∈ [lo, hi]; best count seen."""
    T = cs.shape[0]
    n = B.shape[1]
    best = np.empty(T, np.int64)
    best_w = np.empty(T)
    g = (math.sqrt(5.0) - 1.0) / 2.0
    for t in nb.prange(T):
        d = _shifted(data, diagpos, cs[t])
        x = np.zeros(n)
        xprev = np.empty(n)
        hist = np.empty(0)
        tol = TOL * np.sqrt(np.sum(B[t] * B[t]))
        a, b_ = lo, hi
        w1, w2 = b_ - g * (b_ - a), a + g * (b_ - a)
        x[:] = 0.0
        f1 = K.sor_solve(indptr, indices, d, x, B[t], w1, tol, MAXITER, 0, hist, xprev)[0]
        x[:] = 0.0
        f2 = K.sor_solve(indptr, indices, d, x, B[t], w2, tol, MAXITER, 0, hist, xprev)[0]
        bw, bf = (w1, f1) if f1 <= f2 else (w2, f2)
        for _ in range(nevals - 2):
            if f1 <= f2:
                b_, w2, f2 = w2, w1, f1
                w1 = b_ - g * (b_ - a)
                x[:] = 0.0
                f1 = K.sor_solve(indptr, indices, d, x, B[t], w1, tol, MAXITER, 0, hist, xprev)[0]
                if f1 < bf:
                    bw, bf = w1, f1
            else:
                a, w1, f1 = w1, w2, f2
                w2 = a + g * (b_ - a)
                x[:] = 0.0
                f2 = K.sor_solve(indptr, indices, d, x, B[t], w2, tol, MAXITER, 0, hist, xprev)[0]
                if f2 < bf:
                    bw, bf = w2, f2
        best[t] = bf
        best_w[t] = bw
    return best, best_w


def run_policy(A0, cs, B, omega, *, context=False, seed=0):
    """Solve the whole sequence with krylovlab.SOR; return (mean iterations, wall time, solver)."""
    eye = sp.identity(A0.shape[0], format="csr")
    mats = [(A0 + c * eye).tocsr() for c in cs]  # built outside the timed loop
    solver = SOR(omega=omega, rtol=TOL, maxiter=MAXITER, context_range=CONTEXT_RANGE, rng=seed)
    its = np.empty(len(cs))
    t0 = time.perf_counter()
    for t, (A, c) in enumerate(zip(mats, cs)):
        solver.update_operator(A)
        res = solver.solve(B[t], context=float(c)) if context else solver.solve(B[t])
        its[t] = res.iterations if res.converged else MAXITER
    return its, time.perf_counter() - t0, solver


def synthetic(T, seeds, full, out):
    A0 = poisson((10, 10))
    indptr, indices, data = A0.indptr.astype(np.int64), A0.indices.astype(np.int64), A0.data.copy()
    diagpos = np.array([k for i in range(A0.shape[0]) for k in range(indptr[i], indptr[i + 1]) if indices[k] == i])
    rows = {}
    per_case = {}
    for case in ("high", "low"):
        cs, B = instances(T, case, seed=2024 if case == "high" else 2025)
        res = {}
        # fixed ω = 1 and Young's ω of the mean matrix, through krylovlab.SOR
        its, wall, _ = run_policy(A0, cs, B, 1.0)
        res["omega = 1 (Gauss-Seidel)"] = (its.mean(), wall, "1.00")
        wy = young_omega(A0 + float(np.mean(cs)) * sp.identity(100))
        its, wall, _ = run_policy(A0, cs, B, wy)
        res["Young's omega of the mean matrix"] = (its.mean(), wall, f"{wy:.3f}")
        # best fixed ω in hindsight: the 20 arms, then a 0.01 grid around the best arm (the full grid with --full)
        t0 = time.perf_counter()
        tab = iteration_table(indptr, indices, data, diagpos, cs, B, DEFAULT_ARMS)
        if full:
            grid = np.round(np.arange(1.0, 1.995, 0.01), 10)
        else:
            w0 = DEFAULT_ARMS[np.argmin(tab.mean(axis=0))]
            grid = np.round(np.arange(max(1.0, w0 - 0.05), min(1.99, w0 + 0.05) + 1e-9, 0.01), 10)
        tab2 = iteration_table(indptr, indices, data, diagpos, cs, B, grid)
        wall = time.perf_counter() - t0
        means = np.concatenate([tab.mean(axis=0), tab2.mean(axis=0)])
        allw = np.concatenate([DEFAULT_ARMS, grid])
        k = int(np.argmin(means))
        res["best fixed omega (hindsight)"] = (means[k], wall, f"{allw[k]:.2f}")
        best_fixed = means[k]
        # learners, through krylovlab.SOR, mean over seeds
        for name, omega, ctx in (
            ("Tsallis-INF", "bandit", False),
            ("binned Tsallis-INF (5 bins on c)", "binned", True),
            ("ChebCB (degree 5, context c)", "contextual", True),
        ):
            m, w, last = [], [], []
            hist_w = None
            for s in range(seeds):
                its, wall, solver = run_policy(A0, cs, B, omega, context=ctx, seed=s)
                m.append(its.mean())
                w.append(wall)
                last.append(its[-min(1000, T // 5):].mean())
                if s == 0:
                    hist_w = (np.array(solver.learner.omega_history), its.copy())
            res[name] = (float(np.mean(m)), float(np.mean(w)), f"learned (last 1k: {np.mean(last):.1f})")
            per_case.setdefault(case, {})[name] = hist_w
        # per-instance optimal ω: golden-section search
        t0 = time.perf_counter()
        opt, optw = golden_optimal(indptr, indices, data, diagpos, cs, B, 1.0, 1.99, 20)
        wall = time.perf_counter() - t0
        res["per-instance optimal omega (golden section, 20 evals)"] = (opt.mean(), wall, "per instance")
        inst_opt = opt.mean()
        if full:
            res["per-instance best on the 0.01 grid (check)"] = (tab2.min(axis=1).mean(), float("nan"), "per instance")
        per_case[case]["_ref"] = (best_fixed, inst_opt, res["omega = 1 (Gauss-Seidel)"][0], cs)
        for name, (mean, wall, wtxt) in res.items():
            r = rows.setdefault(name, {"policy": name})
            r[f"{case}: omega"] = wtxt
            r[f"{case}: mean iters"] = float(mean)
            r[f"{case}: / best fixed"] = float(mean / best_fixed)
            r[f"{case}: / instance-opt"] = float(mean / inst_opt)
            r[f"{case}: time (s)"] = float(wall)
    return list(rows.values()), per_case


# ------------------------------------------------------------------------------------ heat 2D
def heat_case(nx, steps, dt, out):
    """Crank–Nicolson for u_t = κ(t)Δu + f on the unit square; SSOR-PCG per step."""
    h = 1.0 / nx
    m = nx - 1
    L = poisson((m, m)) / h**2  # −Δ
    eye = sp.identity(m * m, format="csr")
    xs = np.arange(1, nx) * h
    X, Y = np.meshgrid(xs, xs, indexing="ij")

    def bump(cx, cy, r):
        d2 = ((X - cx) ** 2 + (Y - cy) ** 2) / r**2
        return np.where(d2 < 1, np.exp(-1.0 / np.maximum(1 - d2, 1e-300)), 0.0).ravel()

    def kappa(t):
        s = math.sin(2 * math.pi * t)
        return max(0.1 * s, -10 * s)

    u0 = bump(0.5, 0.5, 0.25)

    def forcing(t):
        return 32 * bump(0.5 + 0.25 * math.cos(2 * math.pi * t), 0.5 + 0.25 * math.sin(2 * math.pi * t), 0.125)

    # matrices and right-hand-side operators, built once outside the timed loops
    ks = [kappa(k * dt) for k in range(steps)]
    lhs = [(eye + 0.5 * kk * dt * L).tocsr() for kk in ks]
    rhs = [(eye - 0.5 * kk * dt * L).tocsr() for kk in ks]
    fs = [dt * 0.5 * (forcing(k * dt) + forcing((k + 1) * dt)) for k in range(steps)]

    def run(policy, seed=0):
        if policy == "cg":
            M = None
        else:
            M = SSOR(lhs[0], omega=policy, context_range=(0.0, 10.0), rng=seed) if isinstance(policy, str) \
                else SSOR(lhs[0], omega=policy)
        solver = krylovlab.CG(lhs[0], rtol=TOL, maxiter=MAXITER, M=M)
        u = u0.copy()
        total = 0
        omegas = []
        t0 = time.perf_counter()
        for k in range(steps):
            b = rhs[k] @ u + fs[k]
            if M is not None:
                M.update_operator(lhs[k])
            solver.update_operator(lhs[k])
            if M is not None:
                omegas.append(M.choose(context=ks[k]))
            res = solver.solve(b, x0=u)
            if M is not None:
                M.update(res.iterations)
            if not res.converged:
                raise RuntimeError(f"heat step {k} failed: {res}")
            total += res.iterations
            u = res.x
        return total, time.perf_counter() - t0, omegas

    rows = []
    results = {}
    for name, pol in (("CG, no preconditioner", "cg"), ("SSOR-PCG omega = 1", 1.0)):
        results[name] = run(pol)
    grid = [1.0, 1.2, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9]
    best = None
    t0 = time.perf_counter()
    for w in grid[1:]:
        tot, wall, _ = run(w)
        if best is None or tot < best[0]:
            best = (tot, wall, w)
    search = time.perf_counter() - t0 + results["SSOR-PCG omega = 1"][1]
    tot1 = results["SSOR-PCG omega = 1"][0]
    if tot1 <= best[0]:
        best = (tot1, results["SSOR-PCG omega = 1"][1], 1.0)
    results[f"SSOR-PCG best fixed omega = {best[2]} (grid {grid})"] = (best[0], best[1], None)
    for name, pol in (("SSOR-PCG Tsallis-INF", "bandit"), ("SSOR-PCG binned Tsallis-INF (6 bins on kappa)", "binned"),
                      ("SSOR-PCG ChebCB (context kappa)", "contextual")):
        results[name] = run(pol)
    ref = best[0]
    for name, (tot, wall, _) in results.items():
        rows.append({"policy": name, "total CG iterations": int(tot), "/ best fixed": tot / ref,
                     "time (s)": wall, "time per iteration (ms)": 1e3 * wall / max(tot, 1)})
    return rows, search


# ------------------------------------------------------------------------------ kernel speed
def kernel_speed(nx, repeat):
    import pyamg.amg_core as amg_core
    from threadpoolctl import threadpool_limits

    A = poisson((nx, nx))
    n = A.shape[0]
    rng = np.random.default_rng(0)
    b = rng.standard_normal(n)
    ip, ix, d = A.indptr, A.indices, A.data
    ip64, ix64 = ip.astype(np.int64), ix.astype(np.int64)
    rows = []

    def best_of(*fns):
        """Minimum time of each fn, the fns interleaved in every repeat (so they see the same machine load)."""
        ts = [[] for _ in fns]
        for _ in range(repeat):
            for f, t in zip(fns, ts):
                t0 = time.perf_counter()
                f()
                t.append(time.perf_counter() - t0)
        return [min(t) for t in ts]

    x = np.zeros(n)
    for omega in (1.0, 1.5):
        K.sor_sweep(ip, ix, d, x, b, omega, 0, n, 1)  # compile
        K.sor_sweep(ip64, ix64, d, x, b, omega, 0, n, 1)
        if omega == 1.0:
            peer_fn = lambda: amg_core.gauss_seidel(ip, ix, d, x, b, 0, n, 1)  # noqa: E731
            peer = "pyamg amg_core.gauss_seidel"
        else:
            peer_fn = lambda: amg_core.sor_gauss_seidel(ip, ix, d, x, b, 0, n, 1, omega)  # noqa: E731
            peer = "pyamg amg_core.sor_gauss_seidel"
        with threadpool_limits(1):
            t_ours, t_ours64, t_pyamg = best_of(lambda: K.sor_sweep(ip, ix, d, x, b, omega, 0, n, 1),
                                                lambda: K.sor_sweep(ip64, ix64, d, x, b, omega, 0, n, 1), peer_fn)
        # check both give the same sweep
        x1 = np.zeros(n)
        x2 = np.zeros(n)
        K.sor_sweep(ip, ix, d, x1, b, omega, 0, n, 1)
        if omega == 1.0:
            amg_core.gauss_seidel(ip, ix, d, x2, b, 0, n, 1)
        else:
            amg_core.sor_gauss_seidel(ip, ix, d, x2, b, 0, n, 1, omega)
        same = float(np.max(np.abs(x1 - x2)))
        rows.append({"sweep (forward, 1000x1000 Poisson)": f"omega = {omega}", "krylovlab int32 (ms)": 1e3 * t_ours,
                     "krylovlab int64 (ms)": 1e3 * t_ours64, "peer": peer, "peer (ms)": 1e3 * t_pyamg,
                     "peer / krylovlab": t_pyamg / t_ours, "max |x diff|": same})
    # the multicolour (red-black here) sweep, rows of a colour split over numba's threads
    from krylovlab.relax.coloring import multicolor_ordering

    col = multicolor_ordering(A)
    K.sor_sweep_multicolor(ip, ix, d, x, b, 1.5, col.order, col.color_ptr, False)
    with threadpool_limits(1):
        t_mc, t_nat = best_of(lambda: K.sor_sweep_multicolor(ip, ix, d, x, b, 1.5, col.order, col.color_ptr, False),
                              lambda: K.sor_sweep(ip, ix, d, x, b, 1.5, 0, n, 1))
    rows.append({"sweep (forward, 1000x1000 Poisson)": f"omega = 1.5, multicolour ({col.ncolors} colours, "
                 f"{nb.get_num_threads()} threads)", "krylovlab int32 (ms)": 1e3 * t_mc, "peer": "krylovlab natural order",
                 "peer (ms)": 1e3 * t_nat, "peer / krylovlab": t_nat / t_mc})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="default: 5 000 instances, 3 seeds, 1 000 heat steps")
    g.add_argument("--full", action="store_true", help="0.01 ω grid, 5 seeds, 5 000 heat steps")
    ap.add_argument("--parts", default="synthetic,heat,kernel",
                    help="comma-separated subset to run (results then go to learning_to_relax_<parts>.md)")
    args = ap.parse_args(argv)
    full = args.full
    parts = args.parts.split(",")
    text = [header("Learning to relax: SOR's omega learned across a sequence of systems")]
    load0 = loadavg()
    if "synthetic" in parts:
        rows, per_case = synthetic(5000, 5 if full else 3, full, None)
        cols = ["policy"] + [f"{c}: {k}" for c in ("high", "low") for k in ("omega", "mean iters", "/ best fixed",
                                                                          "/ instance-opt", "time (s)")]
        text.append("## 1. Synthetic SOR, 5 000 instances (10x10 Laplacian + c I), mean SOR iterations per instance\n")
        text.append(table(rows, cols))
    if "heat" in parts:
        steps = 5000 if full else 1000
        rows, search = heat_case(100, steps, 1e-3, None)
        text.append(f"\n## 2. Heat equation, Crank-Nicolson, 100x100 grid (n = 9801), {steps} steps, dt = 1e-3, "
                    "SSOR-PCG (krylovlab.CG + krylovlab.SSOR), rtol 1e-8, warm start\n")
        text.append(table(rows))
        text.append(f"\n(searching the best fixed omega took {search:.1f} s of solves: it is an oracle, not a policy)")
    if "kernel" in parts:
        rows = kernel_speed(1000, 30 if full else 20)
        text.append("\n## 3. One forward SOR sweep, 1000x1000 Poisson (n = 1e6), serial, minimum of repeats\n")
        text.append(table(rows))
    load1 = loadavg()
    text.append(f"\nload average before / after: {load0:.2f} / {load1:.2f} (2 cores, shared machine)")
    out = "\n".join(text)
    print(out)
    everything = set(parts) == {"synthetic", "heat", "kernel"}
    save("learning_to_relax" if everything else "learning_to_relax_" + "_".join(parts), out)


if __name__ == "__main__":
    main()
