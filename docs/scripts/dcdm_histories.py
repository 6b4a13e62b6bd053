"""Residual histories of DCDM, CG and IC(0)-PCG on a 128² Darcy problem → docs/img/dcdm_histories.png.

Run from the repository root: ``python docs/scripts/dcdm_histories.py``.
All curves are the true relative residual ‖b − A x_k‖ / ‖b‖ against iterations.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402

import sys  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from dcdm import ic_setup  # noqa: E402  (the IC(0) peer of bench/dcdm.py)

from krylovlab.learned import DCDM  # noqa: E402
from krylovlab.learned._fields import diffusion_matrix, layered_field, lognormal_field  # noqa: E402

RTOL = 1e-6
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "img", "dcdm_histories.png")


def scipy_history(A, b, M=None):
    bn = np.linalg.norm(b)
    hist = [1.0]
    spla.cg(A, b, rtol=RTOL, atol=0.0, maxiter=5000, M=M,
            callback=lambda xk: hist.append(np.linalg.norm(b - A @ xk) / bn))
    return hist


def main():
    n = 128
    cases = [("Darcy, a = exp(GRF) (training distribution)", lognormal_field((n, n), sigma=1.0, length=0.1, rng=1000)),
             ("layered, contrast 100 (unseen)", layered_field((n, n), contrast=100.0, rng=3000))]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (title, a) in zip(axes, cases):
        A = diffusion_matrix(a)
        b = np.random.default_rng(0).standard_normal(n * n)
        res = DCDM(A, grid=(n, n), rtol=RTOL, history=True).solve(b)
        M = ic_setup(A)
        ax.semilogy(np.asarray(res.history) / np.linalg.norm(b), label=f"DCDM, shipped model ({res.iterations})")
        h = scipy_history(A, b, M)
        ax.semilogy(h, label=f"IC(0)-PCG ({len(h) - 1})")
        h = scipy_history(A, b)
        ax.semilogy(h, label=f"CG ({len(h) - 1})")
        ax.axhline(RTOL, color="gray", lw=0.8, ls=":")
        ax.set_title(f"{title}, {n}²", fontsize=10)
        ax.set_xlabel("iteration")
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(left=0)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("‖b − A x‖ / ‖b‖")
    fig.tight_layout()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
