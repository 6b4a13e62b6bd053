"""Figure for docs/relaxation.md: ω chosen and SOR iterations per instance over a sequence.

The paper's high-variance synthetic sequence (10×10 Laplacian + c·I,
c = −0.15 + 0.6·Beta(0.5, 1.5)), 2 000 instances, solved with
`krylovlab.SOR` at ω = 1, at the best fixed ω of the 20 arms, with
Tsallis-INF and with ChebCB; Young's ω*(c_t) per instance for reference.

Usage: ``python docs/scripts/relaxation_figure.py`` (writes docs/img/relaxation_bandit.png).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from krylovlab import SOR  # noqa: E402
from krylovlab.gallery import poisson  # noqa: E402
from krylovlab.relax import young_omega  # noqa: E402

T = 2000


def main():
    rng = np.random.default_rng(2024)
    cs = -0.15 + 0.6 * rng.beta(0.5, 1.5, size=T)
    B = []
    while len(B) < T:
        v = rng.standard_normal(100)
        if v @ v <= 100:
            B.append(v)
    A0 = poisson((10, 10))
    mats = [(A0 + c * sp.identity(100)).tocsr() for c in cs]

    def run(omega, context=False):
        solver = SOR(omega=omega, rtol=1e-8, maxiter=10_000, context_range=(-0.15, 0.65), rng=0)
        its, ws = [], []
        for A, b, c in zip(mats, B, cs):
            solver.update_operator(A)
            res = solver.solve(b, context=float(c)) if context else solver.solve(b)
            its.append(res.iterations if res.converged else 10_000)
            ws.append(res.extras["omega"])
        return np.array(its), np.array(ws)

    arms = np.round(np.linspace(1.0, 1.95, 20), 10)
    fixed = {w: run(w)[0] for w in (1.0, 1.7, 1.75, 1.8, 1.85)}
    w_best = min(fixed, key=lambda w: fixed[w].mean())
    ts_it, ts_w = run("bandit")
    cb_it, cb_w = run("contextual", context=True)
    young = np.array([young_omega(A) for A in mats[:T]])

    def smooth(v, k=100):
        return np.convolve(v, np.ones(k) / k, mode="valid")

    fig = plt.figure(figsize=(10, 8), constrained_layout=True)
    gs = fig.add_gridspec(2, 2, height_ratios=[1, 1])
    ax1, ax3, ax2 = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[1, :])
    t = np.arange(1, T + 1)
    k = 300
    ax1.plot(t[:k], young[:k], "x", ms=4, color="k", alpha=0.6, label="Young's ω*(c_t)")
    ax1.plot(t[:k], ts_w[:k], "o", ms=3, color="C0", alpha=0.7, label="Tsallis-INF (no context)")
    ax1.plot(t[:k], cb_w[:k], "s", ms=3, color="C3", alpha=0.7, label="ChebCB (context c)")
    ax1.axhline(w_best, color="C2", lw=1.5, label=f"best fixed ω = {w_best}")
    ax1.set_xlabel("instance (first 300)")
    ax1.set_ylabel("ω used")
    ax1.set_ylim(0.97, 2.0)
    ax1.legend(loc="lower right", fontsize=7)
    ax1.set_title("ω chosen over the sequence", fontsize=10)
    late = slice(T // 2, T)
    order = np.argsort(cs)
    ax3.plot(cs[order], young[order], "k-", lw=1.5, label="Young's ω*(c)")
    jitter = np.random.default_rng(0).uniform(-0.01, 0.01, T)
    ax3.plot(cs[late], cb_w[late] + jitter[late], "s", ms=2, color="C3", alpha=0.4,
             label=f"ChebCB, instances {T // 2 + 1}-{T}")
    ax3.plot(cs[late], ts_w[late] + jitter[late], "o", ms=2, color="C0", alpha=0.25,
             label=f"Tsallis-INF, instances {T // 2 + 1}-{T}")
    ax3.set_xlabel("context c (diagonal shift)")
    ax3.set_ylabel("ω used")
    ax3.set_ylim(0.97, 2.0)
    ax3.legend(loc="lower left", fontsize=7, markerscale=2)
    ax3.set_title("ChebCB follows ω*(c); Tsallis-INF picks one ω", fontsize=10)
    tt = t[99:]
    ax2.semilogy(tt, smooth(fixed[1.0]), color="0.5", label=f"ω = 1 (mean {fixed[1.0].mean():.0f})")
    ax2.semilogy(tt, smooth(fixed[w_best]), color="C2", label=f"best fixed ω (mean {fixed[w_best].mean():.0f})")
    ax2.semilogy(tt, smooth(ts_it), color="C0", label=f"Tsallis-INF (mean {ts_it.mean():.0f})")
    ax2.semilogy(tt, smooth(cb_it), color="C3", label=f"ChebCB (mean {cb_it.mean():.0f})")
    ax2.set_xlabel("instance")
    ax2.set_ylabel("SOR iterations (moving mean of 100)")
    ax2.legend(loc="upper right", fontsize=8)
    ax2.set_title("SOR on 2 000 shifted 10×10 Laplacians (high-variance shifts), rtol 1e-8", fontsize=10)
    out = ROOT / "docs" / "img" / "relaxation_bandit.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}; arms {arms[0]}..{arms[-1]}")


if __name__ == "__main__":
    main()
