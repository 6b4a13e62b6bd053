"""Algebraically smooth vectors by bootstrap AMG with compatible weighted matching.

Algorithm (D'Ambra & Vassilevski, "Adaptive AMG with coarsening based on
compatible weighted matching", Comput. Vis. Sci. 16, 2013; D'Ambra, Cutillo &
Vassilevski, "Bootstrap AMG for spectral clustering", Comput. Math. Methods 1,
2019):

1. Start from a given smooth vector w (the constant, or D^½·1 for a
   normalised Laplacian).
2. Build a hierarchy *compatible* with w: pair vertices by a matching that
   favours strong couplings across which w varies little (edge weight
   ``1 − 2 a_ij w_i w_j / (a_ii w_i² + a_jj w_j²)``), two matching sweeps per
   level (aggregates of up to 4 vertices), unsmoothed prolongation that
   interpolates w exactly (P_ij = w_i / ‖w|_agg‖), Galerkin coarse operators,
   until the coarse level is small or coarsening stalls.
3. Relax ``A x = 0`` from a random x with the *composite* solver — one
   V-cycle of every hierarchy built so far, applied in turn (multiplicative
   composition) — for ``relax_iters`` iterations.  The A-norm reduction per
   iteration estimates the composite solver's convergence factor; the
   normalised x is the next smooth vector and seeds the next hierarchy.
4. Stop when the factor drops below ``tol`` or ``n_vectors`` vectors exist;
   orthonormalise the vectors (QR).

The error that survives relaxation by a good solver is what that solver
cannot see: the algebraically smooth vectors, which for a graph Laplacian
approximate the low end of its spectrum (the cluster indicators).

Monitored quantity: the composite solver's A-norm convergence factor.
Workspace: the ``n_vectors`` smooth vectors, one hierarchy per vector (grid
complexity about 4/3 each), and the V-cycle work vectors of each.

The V-cycles run in `krylovlab.kernels.cpu.vcycle` (symmetric Gauss–Seidel,
pseudo-inverse on the coarsest level); the matching is
`krylovlab.kernels.cpu.compatible_matching`.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np
import scipy.sparse as sp

from .._operator import as_operator
from ..kernels.cpu import _amg as kamg
from ..kernels.cpu._blas import spmv
from .precond import AMG

__all__ = ["bootstrap_smooth_vectors", "matching_hierarchy", "BootstrapResult"]


@dataclasses.dataclass
class BootstrapResult:
    """Output of `bootstrap_smooth_vectors`.

    Attributes
    ----------
    vectors : ndarray (n, m)
        Orthonormal basis of the smooth vectors (QR of the raw vectors).
    raw : ndarray (n, m)
        The smooth vectors as found (each of unit 2-norm).
    factors : list of float
        Composite-solver convergence factor measured when each vector after
        the first was found.
    hierarchies : list of AMG
        The compatible-matching hierarchies (one per vector).
    """

    vectors: np.ndarray
    raw: np.ndarray
    factors: list
    hierarchies: list


def _aggregate_by_matching(A, w, sweeps):
    """Prolongation P (n × nc) from ``sweeps`` rounds of compatible matching.

    P has one nonzero per row (vertex i → its aggregate, value p_i), so the Galerkin
    product Pᵀ A P is assembled directly from A's entries: (agg_i, agg_j) receives
    p_i a_ij p_j (`kernels.cpu._amg.galerkin_one_per_row`), without sparse
    matrix–matrix products.
    """
    n = A.shape[0]
    agg_all = np.arange(n)
    p_all = np.ones(n)
    Ac, wc = A, w
    for _ in range(sweeps):
        m = Ac.shape[0]
        agg, nagg = kamg.compatible_matching(Ac.indptr, Ac.indices, Ac.data, wc)
        # P_k e_agg = w restricted to the aggregate, normalised
        norms = np.sqrt(np.bincount(agg, weights=wc * wc, minlength=nagg))
        size = np.bincount(agg, minlength=nagg).astype(float)
        small = norms <= 1e-300
        vals = np.where(small[agg], 1.0 / np.sqrt(size[agg]), wc / np.where(small, 1.0, norms)[agg])
        wc = np.where(small, 0.0, norms)
        cptr, cidx, cdat = kamg.galerkin_one_per_row(Ac.indptr, Ac.indices, Ac.data, agg, vals, nagg)
        Ac = sp.csr_matrix((cdat, cidx, cptr), shape=(nagg, nagg))  # sorted, no duplicates
        p_all = p_all * vals[agg_all]
        agg_all = agg[agg_all]
        if nagg == m and nagg >= n:
            break
    P = sp.csr_matrix((p_all, agg_all, np.arange(n + 1)), shape=(n, Ac.shape[0]))
    return P, Ac, wc


def matching_hierarchy(A, w, *, max_coarse: int = 40, max_levels: int = 20, sweeps: int = 2) -> AMG:
    """A multigrid hierarchy compatible with the smooth vector ``w``.

    Parameters
    ----------
    A : scipy sparse matrix
        Symmetric positive (semi)definite, nonzero diagonal.
    w : ndarray
        The vector the hierarchy must represent exactly on every level.
    max_coarse : int
        Stop coarsening at this many unknowns.
    max_levels : int
    sweeps : int
        Matching rounds per level (2 gives aggregates of up to 4 vertices).

    Returns
    -------
    AMG
        With symmetric Gauss–Seidel smoothing and a pseudo-inverse on the
        coarsest level; ``apply`` runs one V-cycle.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.gallery import poisson
    >>> from krylovlab.amg.smooth import matching_hierarchy
    >>> A = poisson((32, 32))
    >>> M = matching_hierarchy(A, np.ones(A.shape[0]))
    >>> M.levels > 2
    True
    """
    from pyamg.multilevel import MultilevelSolver

    A = sp.csr_matrix(A, dtype=np.float64)
    A.sort_indices()
    w = np.asarray(w, dtype=np.float64)
    levels = []
    Ac, wc = A, w
    while len(levels) < max_levels - 1 and Ac.shape[0] > max_coarse:
        P, Anext, wnext = _aggregate_by_matching(Ac, wc, sweeps)
        if P.shape[1] > 0.9 * Ac.shape[0]:  # coarsening stalled
            break
        lev = MultilevelSolver.Level()
        lev.A, lev.P, lev.R = Ac, P, P.T.tocsr()
        levels.append(lev)
        Ac, wc = Anext, wnext
    lev = MultilevelSolver.Level()
    lev.A = Ac
    levels.append(lev)
    ml = MultilevelSolver(levels, coarse_solver="pinv")
    return AMG(ml, smoother="gauss_seidel", sweep="symmetric")


def bootstrap_smooth_vectors(A, n_vectors: int = 6, *, w0=None, relax_iters: int = 15, tol: float = 1e-6,
                             max_coarse: int = 40, rng=None) -> BootstrapResult:
    """Algebraically smooth vectors of ``A`` by bootstrap AMG (see module docstring).

    Parameters
    ----------
    A : sparse matrix
        Symmetric positive definite (e.g. a shifted graph Laplacian).
    n_vectors : int
        Vector budget (the first vector is ``w0``).
    w0 : ndarray, optional
        First smooth vector (default: the constant vector).
    relax_iters : int
        Composite-solver iterations applied to a random vector for each new
        smooth vector.  Few iterations (≈ 15) keep the low modes; many would
        also damp them.
    tol : float
        Stop early once the composite solver's convergence factor is below
        this.
    max_coarse : int
        Coarsest-level size of each hierarchy.
    rng : None, int or numpy.random.Generator
        Seed of the random starting vectors.

    Returns
    -------
    BootstrapResult

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.gallery import poisson
    >>> from krylovlab.amg.smooth import bootstrap_smooth_vectors
    >>> A = poisson((30, 30))
    >>> res = bootstrap_smooth_vectors(A, 4, rng=0)
    >>> V = res.vectors
    >>> bool(np.allclose(V.T @ V, np.eye(V.shape[1])))
    True
    """
    op = as_operator(A, name="A")
    if op.kind != "csr" and op.kind != "dense":
        raise TypeError("bootstrap_smooth_vectors needs an explicit matrix")
    A = sp.csr_matrix(op.csr if op.kind == "csr" else op.dense, dtype=np.float64)
    A.sort_indices()
    n = A.shape[0]
    if isinstance(n_vectors, bool) or not isinstance(n_vectors, numbers.Integral) or n_vectors < 1:
        raise ValueError(f"n_vectors must be a positive integer, got {n_vectors!r}")
    if isinstance(relax_iters, bool) or not isinstance(relax_iters, numbers.Integral) or relax_iters < 1:
        raise ValueError(f"relax_iters must be a positive integer, got {relax_iters!r}")
    if not (tol >= 0):
        raise ValueError(f"tol must be non-negative, got {tol!r}")
    if np.any(A.diagonal() <= 0):
        raise ValueError("bootstrap_smooth_vectors: A needs a positive diagonal (shift a singular Laplacian)")
    n_vectors = min(int(n_vectors), n)
    gen = np.random.default_rng(rng)
    # a hierarchy that is a direct solve would relax every vector to zero:
    # keep at least two levels on small problems
    max_coarse = max(2, min(int(max_coarse), n // 8))
    w = np.ones(n) if w0 is None else np.asarray(w0, dtype=np.float64).reshape(-1).copy()
    if w.shape[0] != n or not np.all(np.isfinite(w)) or not np.any(w):
        raise ValueError("w0 must be a finite nonzero vector of length n")
    w /= np.linalg.norm(w)
    vecs = [w]
    hierarchies = []
    factors = []
    Ax = np.empty(n)
    corr = np.empty(n)
    while len(vecs) < n_vectors:
        hierarchies.append(matching_hierarchy(A, vecs[-1], max_coarse=max_coarse))
        x = gen.standard_normal(n)
        spmv(A.indptr, A.indices, A.data, x, Ax)
        energy0 = energy = float(x @ Ax)
        for _ in range(relax_iters):
            for H in hierarchies:
                # x ← x + B_H (0 − A x)   (one V-cycle of hierarchy H on A x = 0)
                spmv(A.indptr, A.indices, A.data, x, Ax)
                np.negative(Ax, out=Ax)
                H.apply(Ax, corr)
                x += corr
            spmv(A.indptr, A.indices, A.data, x, Ax)
            energy_new = float(x @ Ax)
            if energy_new <= 0 or not np.isfinite(energy_new):
                break
            energy = energy_new
        factor = (energy / energy0) ** (0.5 / relax_iters) if energy0 > 0 else 0.0
        factors.append(factor)
        nx = np.linalg.norm(x)
        if not np.isfinite(nx) or nx <= 1e-300:
            raise FloatingPointError("bootstrap_smooth_vectors: the composite solver relaxed the random vector "
                                     "to zero; use fewer relax_iters or a larger max_coarse")
        vecs.append(x / nx)
        if factor <= tol:
            break
    raw = np.column_stack(vecs)
    Q, _ = np.linalg.qr(raw)
    return BootstrapResult(Q, raw, factors, hierarchies)
