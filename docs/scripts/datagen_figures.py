"""Figures for docs/datagen.md: coefficient fields beside solutions, and iterations along the solving order.

Run: python docs/scripts/datagen_figures.py   (needs the plot extra: matplotlib)
"""

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from krylovlab import datagen  # noqa: E402

IMG = Path(__file__).resolve().parents[1] / "img"


def main():
    IMG.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = {}
        for order in ("none", "skr"):
            out = Path(tmp) / f"{order}.h5"
            datagen.generate("darcy", 80, out, grid=64, seed=0, solver="gcrodr", order=order, progress=False,
                             shard_size=80)
            data[order] = datagen.load(out)
    d = data["skr"]
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.2))
    for col in range(4):
        a = d["inputs"]["a"][col]
        u = d["solution"][col]
        im = axes[0, col].imshow(np.log(a).T, origin="lower", cmap="viridis")
        axes[0, col].set_title(f"sample {col}: log a")
        fig.colorbar(im, ax=axes[0, col], shrink=0.8)
        im = axes[1, col].imshow(u.T, origin="lower", cmap="magma")
        axes[1, col].set_title(f"solution u ({d['iterations'][col]} it)")
        fig.colorbar(im, ax=axes[1, col], shrink=0.8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Darcy 64²: coefficient fields a = exp(GRF) and solutions of −∇·(a∇u) = 1")
    fig.tight_layout()
    fig.savefig(IMG / "datagen_samples.png", dpi=90)

    fig, ax = plt.subplots(figsize=(8, 3.6))
    for order, label in (("none", "index order"), ("skr", "SKR greedy order")):
        dd = data[order]
        its = dd["iterations"][np.argsort(dd["solve_rank"])]
        ax.plot(its, marker=".", label=f"{label} (mean {its.mean():.0f})")
    ax.set_xlabel("position in solving order")
    ax.set_ylabel("GCRO-DR(40, 20) iterations")
    ax.set_title("Recycling carries the slow modes: iterations drop after the first system")
    ax.legend()
    fig.tight_layout()
    fig.savefig(IMG / "datagen_iterations.png", dpi=90)
    print("wrote", IMG / "datagen_samples.png", IMG / "datagen_iterations.png")


if __name__ == "__main__":
    main()
