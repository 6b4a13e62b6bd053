"""Grid multigrid hierarchies (``AMG(kind="grid")``): transfers, coarse operators, cycle, sequences, errors."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from krylovlab.amg import AMG, AMGCG
from krylovlab.amg.grid import axis_transfers, grid_hierarchy
from krylovlab.gallery import poisson
from krylovlab.problems import get_family


def darcy(grid, dim, index=0):
    fam = get_family("darcy", grid=grid, dim=dim)
    return fam.assemble(fam.sample(np.random.default_rng(index)))


@pytest.mark.parametrize("n", [4, 5, 8, 9, 32])
def test_axis_transfers(n):
    T, P = axis_transfers(n)
    nc = n // 2
    assert T.shape == P.shape == (n, nc)
    Td = T.toarray()
    assert np.all(Td.sum(axis=1) == 1) and np.all(Td.sum(axis=0) >= 2)  # every node in one group of 2 or 3
    Pd = P.toarray()
    assert np.all(Pd >= 0) and np.all((Pd > 0).sum(axis=1) <= 2)
    # linear interpolation of u(x) = (x + 1)(n − x), zero at the boundary nodes −1 and n, from the group
    # centres: exact for linear functions, so compare with the piecewise-linear interpolant directly
    centre = (Td.T @ np.arange(n)) / Td.sum(axis=0)
    pts = np.concatenate([[-1.0], centre, [float(n)]])
    u = lambda x: (x + 1.0) * (n - x)  # noqa: E731
    want = np.interp(np.arange(n), pts, u(pts))
    np.testing.assert_allclose(Pd @ u(centre), want, rtol=1e-12)
    if n == 8:  # the first node: 2/3 of the first centre (x = 0.5) and 1/3 of the boundary's zero (x = −1)
        assert np.isclose(Pd[0, 0], 2 / 3) and np.isclose(Pd[1, 0], 0.75) and np.isclose(Pd[1, 1], 0.25)
    with pytest.raises(ValueError):
        axis_transfers(1)


@pytest.mark.parametrize("shape", [(16, 16), (12, 10), (9, 8, 7), (8, 8, 8)])
def test_grid_hierarchy_coarse_operators_are_stencils(shape):
    """½TᵀAT of a 5/7-point operator is a 5/7-point, symmetric positive definite operator on the coarse grid;
    R = Pᵀ; every level's matrix is what the recorded (½Tᵀ, T) make of the one above."""
    A = poisson(shape).tocsr()
    ml, coarse, axes = grid_hierarchy(A, shape, max_coarse=10)
    assert len(axes) == len(coarse)
    assert len(ml.levels) == len(coarse) + 1 >= 2
    stencil = 2 * len(shape) + 1
    for k, (Rc, Pc) in enumerate(coarse):
        lev, nxt = ml.levels[k], ml.levels[k + 1]
        assert (lev.R != lev.P.T).nnz == 0
        want = (Rc @ lev.A @ Pc).toarray()
        np.testing.assert_allclose(nxt.A.toarray(), want, rtol=1e-14, atol=1e-14 * np.abs(want).max())
        assert np.diff(nxt.A.indptr).max() <= stencil
        assert abs(nxt.A - nxt.A.T).max() <= 1e-14 * abs(nxt.A).max()
        assert np.linalg.eigvalsh(nxt.A.toarray()).min() > 0
    # coarsened until at most 10 unknowns, or until no axis has 4 nodes (9×8×7 → 4×4×3 → 2×2×3)
    assert ml.levels[-1].A.shape[0] <= (12 if shape == (9, 8, 7) else 10)


def test_grid_vcycle_is_symmetric_positive_definite():
    A, _ = darcy(12, 2)
    M = AMG(A, "grid", grid=(12, 12), max_coarse=10)
    assert M.levels >= 3 and M.kind == "grid"
    Md = np.column_stack([M.apply(e) for e in np.eye(A.shape[0])])
    np.testing.assert_allclose(Md, Md.T, atol=1e-12 * np.abs(Md).max())
    assert np.linalg.eigvalsh((Md + Md.T) / 2).min() > 0


@pytest.mark.parametrize("dim, grid, most", [(3, 16, 10), (3, 17, 10), (2, 64, 12)])
@pytest.mark.parametrize("opts", [{}, dict(sweep="red-black", precision="single")])
def test_grid_amgcg_converges_like_smoothed_aggregation(dim, grid, most, opts, monkeypatch):
    """On Darcy (a = exp(GRF)) the grid hierarchy keeps AMG-CG's iterations in the range of smoothed
    aggregation's, and the true residual meets the tolerance."""
    from krylovlab.amg import precond

    monkeypatch.setattr(precond, "_DIA_MIN_ROWS", 50)  # red–black sweeps on these small grids too
    A, b = darcy(grid, dim)
    shape = (grid,) * dim
    M = AMG(A, "grid", grid=shape, **opts)
    assert M.red_black == bool(opts)
    res = AMGCG(A, amg=M, rtol=1e-8).solve(b)
    sa = AMGCG(A, amg=AMG(A, "sa", **opts), rtol=1e-8).solve(b)
    assert res.converged and np.linalg.norm(b - A @ res.x) <= 1e-8 * np.linalg.norm(b)
    assert res.iterations <= most and res.iterations <= sa.iterations + 2
    # the coarse levels are stencils: 1 + 1/8 + … in 3-D (smoothed aggregation: about 1.5 here), 1 + 1/4 + … in 2-D
    assert M.operator_complexity < (1.2 if dim == 3 else 1.4)


def test_grid_update_operator_keeps_transfers_and_recomputes_coarse_stencils():
    (A0, _), (A1, b) = darcy(10, 3, 0), darcy(10, 3, 1)
    M = AMG(A0, "grid", grid=(10, 10, 10), rebuild_threshold=np.inf)
    P0 = [lev.P.copy() for lev in M.ml.levels[:-1]]
    assert M.update_operator(A1) is False
    for k, (Rc, Pc) in enumerate(M.coarse_transfers):
        assert (M.ml.levels[k].P != P0[k]).nnz == 0
        want = (Rc @ M._As[k] @ Pc).toarray()
        np.testing.assert_allclose(M._As[k + 1].toarray(), want, rtol=1e-13, atol=1e-13 * np.abs(want).max())
    res = AMGCG(A1, amg=M, rtol=1e-8).solve(b)
    assert res.converged and np.linalg.norm(b - A1 @ res.x) <= 1e-8 * np.linalg.norm(b)
    fresh = AMGCG(A1, amg=AMG(A1, "grid", grid=(10, 10, 10)), rtol=1e-8).solve(b)
    np.testing.assert_allclose(res.x, fresh.x, rtol=1e-10, atol=1e-12 * np.abs(fresh.x).max())


@pytest.mark.parametrize("precision", ["double", "single"])
def test_fast_coarse_updates_follow_the_grid_rule(precision):
    """datagen's linear-map updates compute ½TᵀAT for a grid hierarchy (not R·A·P)."""
    from krylovlab.datagen._galerkin import FastGalerkin

    (A0, _), (A1, _) = darcy(12, 3, 2), darcy(12, 3, 3)
    ref = AMG(A0, "grid", grid=(12,) * 3)
    ref.update_operator(A1, rebuild=False)
    amg = AMG(A0, "grid", grid=(12,) * 3, precision=precision)
    fast = FastGalerkin(amg, symmetric=True)
    fast.update(A1)
    tol = 1e-12 if precision == "double" else 2e-6
    for k in range(1, amg.levels):
        want = ref._As[k].toarray()
        np.testing.assert_allclose(amg._As[k].toarray(), want, rtol=tol, atol=tol * np.abs(want).max())
    r = np.random.default_rng(0).standard_normal(A1.shape[0])
    np.testing.assert_allclose(amg.apply(r), ref.apply(r), rtol=1e3 * tol, atol=1e3 * tol * np.abs(ref.apply(r)).max())


def test_grid_pickle_round_trip():
    A, b = darcy(10, 3)
    M = AMG(A, "grid", grid=(10, 10, 10), precision="single")
    M2 = pickle.loads(pickle.dumps(M))
    r = np.random.default_rng(1).standard_normal(A.shape[0])
    np.testing.assert_array_equal(M2.apply(r), M.apply(r))
    assert [(a.nnz, b.nnz) for a, b in M2.coarse_transfers] == [(a.nnz, b.nnz) for a, b in M.coarse_transfers]


def test_grid_bad_input():
    A = poisson((8, 8))
    with pytest.raises(TypeError, match="grid"):
        AMG(A, "grid")
    with pytest.raises(ValueError, match="grid"):
        AMG(A, "grid", grid=(8, 9))
    with pytest.raises(ValueError, match="grid"):
        AMG(A, "grid", grid=(8, 0))
    with pytest.raises(ValueError):
        AMG(A, "grid", grid=(8, 8), max_coarse=0)
    with pytest.raises(ValueError, match="zero on its diagonal"):
        AMG(sp.csr_matrix((64, 64)), "grid", grid=(8, 8))


@pytest.mark.parametrize("shape", [(20, 17), (9, 8, 7), (12, 12, 12)])
@pytest.mark.parametrize("precision", ["double", "single"])
def test_tensor_transfers_equal_the_csr_products(shape, precision):
    """The cycle applies a grid hierarchy's P and R = Pᵀ axis by axis; the same cycle with P and R from CSR
    gives the same vector to rounding, and the kernels alone give P x_c and Pᵀ r."""
    from krylovlab.amg.grid import no_tensor_transfers
    from krylovlab.kernels.cpu import _amg as kamg

    A = poisson(shape).tocsr()
    M = AMG(A, "grid", grid=shape, max_coarse=10, precision=precision)
    pk = M._packed
    assert pk.tt[0].shape[0] == M.levels - 1
    rng = np.random.default_rng(7)
    dtype = pk.xw.dtype
    tol = 1e-12 if precision == "double" else 1e-5
    for lev in range(M.levels - 1):
        P = M._Ps[lev]
        xc = rng.standard_normal(P.shape[1]).astype(dtype)
        x = rng.standard_normal(P.shape[0]).astype(dtype)
        want = x + P @ xc
        kamg._tensor_prolong_add(pk.tt, lev, xc, x)
        np.testing.assert_allclose(x, want, rtol=tol, atol=tol * np.abs(want).max())
        r = rng.standard_normal(P.shape[0]).astype(dtype)
        bc = np.full(P.shape[1], np.nan, dtype=dtype)
        kamg._tensor_restrict(pk.tt, lev, r, bc)
        want = P.T @ r
        np.testing.assert_allclose(bc, want, rtol=tol, atol=tol * np.abs(want).max())
    b = rng.standard_normal(A.shape[0])
    z = M.apply(b)
    pk.tt = no_tensor_transfers(dtype)
    z_csr = M.apply(b)
    np.testing.assert_allclose(z, z_csr, rtol=10 * tol, atol=10 * tol * np.abs(z_csr).max())


def test_red_black_on_coarse_grid_levels_matches_a_reference_cycle(monkeypatch):
    """With sweep="red-black", a grid hierarchy's banded two-coloured coarse levels are swept red–black too;
    the cycle equals a numpy V-cycle doing exactly that, and stays symmetric positive definite."""
    from pyamg.relaxation.relaxation import gauss_seidel

    from krylovlab.amg import precond

    monkeypatch.setattr(precond, "_DIA_MIN_ROWS", 50)
    monkeypatch.setattr(precond, "_COARSE_RB_MIN_ROWS", 20)
    A, _ = darcy(12, 3)
    M = AMG(A, "grid", grid=(12, 12, 12), sweep="red-black")
    pk = M._packed
    rb_levels = {lev: colour for lev, _, colour in pk._c_levels}
    assert M.red_black and 1 in rb_levels and M.levels >= 3
    colours = {0: pk._colour, **rb_levels}
    lv = M.ml.levels

    def smooth(k, Ak, x, b):
        if k not in colours:
            gauss_seidel(Ak, x, b, iterations=1, sweep="symmetric")
            return
        red, d = colours[k] == 0, Ak.diagonal()
        for mask in (red, ~red, red):
            r = b - Ak @ x
            x[mask] += r[mask] / d[mask]

    def cycle(k, b):
        Ak = M._As[k]
        if k == M.levels - 1:
            return np.linalg.pinv(Ak.toarray()) @ b
        x = np.zeros_like(b)
        smooth(k, Ak, x, b)
        x += lv[k].P @ cycle(k + 1, lv[k].P.T @ (b - Ak @ x))
        smooth(k, Ak, x, b)
        return x

    b = np.random.default_rng(3).standard_normal(A.shape[0])
    want = cycle(0, b)
    np.testing.assert_allclose(M.apply(b), want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
    Mfull = np.column_stack([M.apply(e) for e in np.eye(A.shape[0])])  # the operator, column by column
    np.testing.assert_allclose(Mfull, Mfull.T, atol=1e-10 * np.abs(Mfull).max())
    assert np.linalg.eigvalsh((Mfull + Mfull.T) / 2).min() > 0


def test_coarse_red_black_copies_survive_pickling(monkeypatch):
    """A pickled copy of a grid hierarchy with coarse red–black levels (what datagen's pool hands a second
    worker thread) follows a new matrix exactly as the original does."""
    from krylovlab.amg import precond
    from krylovlab.datagen._galerkin import FastGalerkin

    monkeypatch.setattr(precond, "_DIA_MIN_ROWS", 50)
    monkeypatch.setattr(precond, "_COARSE_RB_MIN_ROWS", 20)
    (A0, _), (A1, _) = darcy(12, 3, 0), darcy(12, 3, 1)
    original = FastGalerkin(AMG(A0, "grid", grid=(12,) * 3, sweep="red-black"), symmetric=True)
    assert original.amg._packed._c_levels
    copy = pickle.loads(pickle.dumps(original))
    for fast in (original, copy):
        fast.update(A1)
    r = np.random.default_rng(2).standard_normal(A1.shape[0])
    np.testing.assert_array_equal(copy.amg.apply(r), original.amg.apply(r))
    fresh = AMG(A1, "grid", grid=(12,) * 3, sweep="red-black")
    np.testing.assert_allclose(copy.amg.apply(r), fresh.apply(r), rtol=1e-10, atol=1e-12 * np.abs(fresh.apply(r)).max())
