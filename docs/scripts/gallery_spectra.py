"""Figure for docs/kernels-gallery-cli.md: the spectra of the gallery matrices.

Run from the repository root:  python docs/scripts/gallery_spectra.py
Writes docs/img/gallery_spectra.png.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from krylovlab import gallery  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "img" / "gallery_spectra.png"


def main():
    cases = [
        ("poisson((20, 20))", gallery.poisson((20, 20))),
        ("anisotropic_diffusion(20, epsilon=0.01, theta=π/6)",
         gallery.anisotropic_diffusion(20, epsilon=0.01, theta=np.pi / 6)),
        ("random_spd(400, cond=1e4, density=0.02)", gallery.random_spd(400, cond=1e4, rng=0, density=0.02)),
        ("indefinite_symmetric((20, 20))", gallery.indefinite_symmetric((20, 20))),
        ("complex_hermitian((20, 20), flux=0.1)", gallery.complex_hermitian((20, 20), flux=0.1)),
        ("convection_diffusion((20, 20))", gallery.convection_diffusion((20, 20))),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), constrained_layout=True)
    for ax, (title, a) in zip(axes.ravel(), cases):
        dense = a.toarray()
        if title.startswith("convection"):
            ev = np.linalg.eigvals(dense)
            ax.plot(np.arange(ev.size), np.sort(ev.real), ".", ms=2.5, color="tab:red")
            ax.set_xlabel("index")
            ax.set_ylabel("Re λ (sorted)")
            skew = np.linalg.norm(dense - dense.T, 2) / np.linalg.norm(dense, 2)
            ax.text(0.03, 0.9, f"max |Im λ| = {np.abs(ev.imag).max():.1g}, ‖A−Aᵀ‖/‖A‖ = {skew:.2f}",
                    transform=ax.transAxes, fontsize=8)
        else:
            ev = np.linalg.eigvalsh(dense)
            ax.plot(np.arange(ev.size), ev, ".", ms=2.5)
            ax.set_xlabel("index")
            ax.set_ylabel("λ (sorted)")
            if ev.min() > 0:
                ax.set_yscale("log")
                ax.text(0.03, 0.9, f"κ₂ = {ev.max() / ev.min():.3g}", transform=ax.transAxes)
            else:
                ax.axhline(0.0, color="0.6", lw=0.8)
                ax.text(0.03, 0.9, f"{np.mean(ev < 0):.0%} negative", transform=ax.transAxes)
        ax.set_title(title, fontsize=9)
    fig.suptitle("krylovlab.gallery: eigenvalues of the built-in test matrices (n = 400)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
