"""More gallery matrices: rotated anisotropic diffusion, random SPD with a set
condition number, symmetric indefinite (shifted Laplacian) and complex
Hermitian (magnetic Laplacian) operators."""

from __future__ import annotations

import numpy as np
import pyamg.gallery
import scipy.sparse as sp

from ._grids import _csr, poisson

__all__ = ["anisotropic_diffusion", "random_spd", "indefinite_symmetric", "complex_hermitian"]


def _grid2d(shape, who):
    if np.isscalar(shape):
        shape = (int(shape), int(shape))
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"{who}: shape must be an int or a pair of positive ints, got {shape}")
    return shape


def anisotropic_diffusion(shape, *, epsilon=0.001, theta=np.pi / 4, dtype=np.float64) -> sp.csr_matrix:
    """Rotated anisotropic diffusion ``−∇·(Q diag(1, ε) Qᵀ ∇u)`` on the unit square.

    Nine-point finite differences (pyamg's ``diffusion_stencil_2d`` with
    ``type="FD"``), Dirichlet boundary.  The strong direction is rotated by
    ``theta`` from the x axis; small ``epsilon`` makes the problem hard for
    point smoothers and for unpreconditioned Krylov methods.  The matrix is
    symmetric positive definite for ``0 < epsilon`` (at ``theta`` a multiple of
    π/2 it is the five-point anisotropic Laplacian).

    Parameters
    ----------
    shape : int or (int, int)
        Interior grid points per direction.
    epsilon : float
        Diffusion strength in the weak direction (the strong one is 1), > 0.
    theta : float
        Rotation angle of the strong direction, in radians.
    dtype : float dtype

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.gallery import anisotropic_diffusion
    >>> A = anisotropic_diffusion(16, epsilon=0.01, theta=np.pi / 6)
    >>> A.shape, bool(abs(A - A.T).max() < 1e-12)
    ((256, 256), True)
    """
    shape = _grid2d(shape, "anisotropic_diffusion")
    if not (np.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"anisotropic_diffusion: epsilon must be a positive number, got {epsilon!r}")
    if not np.isfinite(theta):
        raise ValueError(f"anisotropic_diffusion: theta must be finite, got {theta!r}")
    stencil = pyamg.gallery.diffusion_stencil_2d(epsilon=float(epsilon), theta=float(theta), type="FD")
    return _csr(pyamg.gallery.stencil_grid(stencil, shape, format="csr"), dtype)


def _rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def random_spd(n, cond=100.0, rng=None, density=None, *, dtype=np.float64):
    """A random symmetric positive definite matrix with 2-norm condition number ``cond``.

    The eigenvalues are spread geometrically from ``1/cond`` to ``1`` (both
    ends included, so ``‖A‖₂ = 1`` and ``κ₂(A) = cond`` up to rounding) and the
    eigenvectors are random.

    * ``density=None``: a dense ``Q diag(λ) Qᵀ`` with Haar-random orthogonal Q,
      returned as a numpy array.
    * ``density`` in (0, 1]: a sparse CSR matrix built from ``diag(λ)`` (in
      random order) by random Givens rotations ``A ← G A Gᵀ``, which keep the
      spectrum exactly, applied until about ``density·n²`` entries are
      nonzero.

    Parameters
    ----------
    n : int
        Size (≥ 1; for n = 1 the result is ``[[1]]`` whatever ``cond`` is).
    cond : float
        Target 2-norm condition number (≥ 1).
    rng : None, int or numpy.random.Generator
        Seed or generator; the result is reproducible with it.
    density : float, optional
        Target fraction of nonzeros for the sparse variant.
    dtype : float dtype

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.gallery import random_spd
    >>> A = random_spd(50, cond=1e3, rng=0)
    >>> bool(np.isclose(np.linalg.cond(A), 1e3))
    True
    >>> S = random_spd(200, cond=50, rng=1, density=0.05)
    >>> S.format, bool(np.isclose(np.linalg.cond(S.toarray()), 50))
    ('csr', True)
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"random_spd: n must be at least 1, got {n}")
    if not (np.isfinite(cond) and cond >= 1):
        raise ValueError(f"random_spd: cond must be a finite number >= 1, got {cond!r}")
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"random_spd: dtype must be a real float type, got {np.dtype(dtype)}")
    gen = _rng(rng)
    lam = np.geomspace(1.0 / cond, 1.0, n) if n > 1 else np.ones(1)
    if density is None:
        q, r = np.linalg.qr(gen.standard_normal((n, n)))
        q *= np.sign(np.diag(r))  # Haar measure: fix the signs of R's diagonal
        a = (q * lam) @ q.T
        a = 0.5 * (a + a.T)
        return a.astype(dtype)
    if not (0 < density <= 1):
        raise ValueError(f"random_spd: density must be in (0, 1], got {density!r}")
    target = max(n, int(round(density * n * n)))
    a = sp.diags(gen.permutation(lam)).tocsr()
    # Each round rotates a random set of disjoint index pairs; the fraction of
    # rows touched is chosen so the fill grows smoothly towards the target.
    for _ in range(64):
        if a.nnz >= target:
            break
        frac = min(1.0, max(2.0 / n, (target / a.nnz - 1.0) / 2.0))
        m = max(1, int(frac * n / 2))
        perm = gen.permutation(n)
        i, j = perm[:m], perm[m:2 * m]
        if j.size < i.size:  # n == 1
            break
        t = gen.uniform(0.0, 2 * np.pi, m)
        c, s = np.cos(t), np.sin(t)
        rest = perm[2 * m:]
        rows = np.concatenate([i, i, j, j, rest])
        cols = np.concatenate([i, j, i, j, rest])
        vals = np.concatenate([c, -s, s, c, np.ones(rest.size)])
        g = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
        a = (g @ a @ g.T).tocsr()
        a.data[np.abs(a.data) < 1e-300] = 0.0
        a.eliminate_zeros()
    a = 0.5 * (a + a.T)
    return _csr(a, dtype)


def _laplacian_eigenvalues(shape):
    """All eigenvalues of the unscaled Dirichlet Laplacian `poisson(shape)`."""
    total = np.zeros(1)
    for n in shape:
        lam = 2.0 - 2.0 * np.cos(np.arange(1, n + 1) * np.pi / (n + 1))
        total = (total[:, None] + lam[None, :]).ravel()
    return np.sort(total)


def indefinite_symmetric(shape, *, shift=None, dtype=np.float64) -> sp.csr_matrix:
    """Shifted Laplacian ``poisson(shape) − shift·I``: symmetric, indefinite, nonsingular.

    A Helmholtz-like operator (``−Δu − k²u`` times h²).  With ``shift=None``
    the shift is put halfway between two neighbouring distinct eigenvalues
    about a fifth of the way up the spectrum, so roughly 20% of the
    eigenvalues are negative and the matrix is safely nonsingular (the
    Laplacian's eigenvalues are known in closed form).

    Parameters
    ----------
    shape : int or tuple of ints
        Grid points per dimension (1 to 3 dimensions).
    shift : float, optional
        Shift σ (the squared wave number times h²).  A σ within 1e-10 of an
        eigenvalue raises `ValueError` (the matrix would be singular).
    dtype : float dtype

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.gallery import indefinite_symmetric
    >>> A = indefinite_symmetric((10, 10))
    >>> ev = np.linalg.eigvalsh(A.toarray())
    >>> bool(ev.min() < 0 < ev.max())
    True
    """
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    base = poisson(shape, dtype=np.float64)
    lam = _laplacian_eigenvalues(shape)
    if shift is None:
        distinct = np.unique(np.round(lam, 12))
        if distinct.size < 2:
            raise ValueError("indefinite_symmetric: the grid is too small to be indefinite; use at least 2 points")
        k = max(0, min(distinct.size - 2, distinct.size // 5))
        shift = 0.5 * (distinct[k] + distinct[k + 1])
    shift = float(shift)
    if not np.isfinite(shift):
        raise ValueError(f"indefinite_symmetric: shift must be finite, got {shift!r}")
    gap = np.min(np.abs(lam - shift))
    if gap < 1e-10 * max(1.0, abs(shift)):
        raise ValueError(f"indefinite_symmetric: shift={shift!r} is an eigenvalue of the Laplacian, "
                         "so the matrix would be singular; move it between two eigenvalues")
    return _csr(base - shift * sp.identity(base.shape[0], format="csr"), dtype)


def complex_hermitian(shape, *, flux=0.1, shift=0.0, dtype=np.complex128) -> sp.csr_matrix:
    """Magnetic Laplacian on a 2-D grid: complex Hermitian, positive definite for ``shift=0``.

    Five-point stencil whose couplings carry phases, ``a_ij = −exp(iθ_ij)``
    with ``θ_ji = −θ_ij`` (Landau gauge: x-edges have phase 0, the y-edge
    leaving column ``ix`` has phase ``2π·flux·ix``), diagonal 4, Dirichlet
    boundary, minus ``shift·I``.  For ``shift=0`` the matrix is irreducibly
    diagonally dominant, hence Hermitian positive definite; a positive
    ``shift`` above its smallest eigenvalue makes it indefinite.

    Parameters
    ----------
    shape : int or (int, int)
    flux : float
        Magnetic flux per cell in units of the flux quantum (0 gives the real
        Laplacian).
    shift : float
        Real diagonal shift subtracted.
    dtype : complex dtype

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.gallery import complex_hermitian
    >>> A = complex_hermitian((8, 8), flux=0.2)
    >>> bool(abs(A - A.conj().T).max() == 0), bool(np.linalg.eigvalsh(A.toarray()).min() > 0)
    (True, True)
    """
    nx, ny = _grid2d(shape, "complex_hermitian")
    if np.dtype(dtype).kind != "c":
        raise TypeError(f"complex_hermitian: dtype must be complex, got {np.dtype(dtype)}")
    if not (np.isfinite(flux) and np.isfinite(shift)):
        raise ValueError("complex_hermitian: flux and shift must be finite")
    idx = np.arange(nx * ny).reshape(ny, nx)  # row-major: index = iy*nx + ix
    rows, cols, vals = [], [], []
    # x-edges (ix → ix+1), phase 0
    a, b = idx[:, :-1].ravel(), idx[:, 1:].ravel()
    rows += [a, b]
    cols += [b, a]
    vals += [-np.ones(a.size, complex), -np.ones(a.size, complex)]
    # y-edges (iy → iy+1) at column ix, phase 2π·flux·ix
    a, b = idx[:-1, :].ravel(), idx[1:, :].ravel()
    phase = np.exp(2j * np.pi * flux * (a % nx))
    rows += [a, b]
    cols += [b, a]
    vals += [-phase, -np.conj(phase)]
    n = nx * ny
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    vals.append(np.full(n, 4.0 - shift, dtype=complex))
    m = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return _csr(m, dtype)
