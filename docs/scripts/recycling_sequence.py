"""Figure for docs/recycling.md: matvecs per system across a Darcy sequence.

Darcy 50×50 (n = 2500), 40 systems with independent GRF coefficients
(bench/_darcy.py), rtol 1e-8, no preconditioner.  Left: the GMRES family
(GMRES(40), GMRES-DR(40,20) without carry-over, GCRO-DR(40,20) carrying its
recycle space, scipy gcrotmk with CU carried).  Right: CG and recycled CG.
Matvec counts only (deterministic), so the figure does not depend on load.

Run: ``python docs/scripts/recycling_sequence.py`` → docs/img/recycling_sequence.png
"""

from pathlib import Path
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _darcy import darcy_sequence  # noqa: E402

import krylovlab  # noqa: E402
from krylovlab import CG, GCRODR, GMRESDR, RCG  # noqa: E402


class Counting(spla.LinearOperator):
    def __init__(self, A):
        super().__init__(A.dtype, A.shape)
        self.A, self.count = A, 0

    def _matvec(self, x):
        self.count += 1
        return self.A @ x.reshape(-1)


def main(N=40, s=50):
    mats, b, _ = darcy_sequence(s, N, seed=0)
    gmres = krylovlab.get_solver_class("gmres")
    series = {}
    g, d = GCRODR(krylov_dim=40, recycle_dim=20, rtol=1e-8), GMRESDR(krylov_dim=40, recycle_dim=20, rtol=1e-8)
    series["GCRO-DR(40,20), recycle space carried"] = [g.solve(b, A=A).nmatvec for A in mats]
    series["GMRES-DR(40,20), nothing carried"] = [d.solve(b, A=A).nmatvec for A in mats]
    series["GMRES(40)"] = [gmres(A, restart=40, rtol=1e-8, maxiter=20000).solve(b).nmatvec for A in mats]
    CU, gc = [], []
    for A in mats:
        op = Counting(A)
        spla.gcrotmk(op, b, rtol=1e-8, atol=0.0, m=40, k=20, CU=CU, discard_C=True, maxiter=1000)
        gc.append(op.count)
    series["scipy gcrotmk(40,20), CU carried"] = gc
    r = RCG(recycle_dim=8, harvest_dim=24, rtol=1e-8)
    spd = {"CG": [CG(A, rtol=1e-8).solve(b).nmatvec for A in mats],
           "RCG(8), deflation space carried": [r.solve(b, A=A).nmatvec for A in mats]}

    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    t = np.arange(1, N + 1)
    for (name, mv), st in zip(series.items(), ["o-", "s-", "^-", "d--"]):
        ax[0].plot(t, mv, st, ms=3, lw=1.2, label=f"{name} (mean {np.mean(mv):.0f})")
    ax[0].set(title=f"Nonsymmetric-capable methods, Darcy {s}×{s}", xlabel="system in the sequence",
              ylabel="matvecs to reach rtol 1e-8")
    ax[0].set_ylim(0, None)
    ax[0].legend(fontsize=8)
    for (name, mv), st in zip(spd.items(), ["^-", "o-"]):
        ax[1].plot(t, mv, st, ms=3, lw=1.2, label=f"{name} (mean {np.mean(mv):.0f})")
    ax[1].set(title="SPD methods, same sequence", xlabel="system in the sequence", ylabel="matvecs")
    ax[1].set_ylim(0, None)
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    out = ROOT / "docs" / "img" / "recycling_sequence.png"
    fig.savefig(out, dpi=110)
    for name, mv in {**series, **spd}.items():
        print(f"{name:45s} mean {np.mean(mv):7.1f}  first {mv[0]:5d}  last {mv[-1]:5d}")
    print("written", out)


if __name__ == "__main__":
    main()
