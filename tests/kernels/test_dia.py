"""Diagonal storage for banded matrices: conversion and SpMV against the CSR kernel and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from krylovlab import GMRES
from krylovlab.gallery import convection_diffusion, poisson
from krylovlab.kernels import cpu
from krylovlab.krylov import gmres as gmres_module


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("make", [lambda: poisson((9, 7, 5)), lambda: convection_diffusion((23, 17)),
                                  lambda: poisson((40,))])
def test_dia_spmv_is_the_csr_product(make, dtype):
    """Sorted CSR rows: the diagonal product is bitwise the CSR kernel's (same sums, same order)."""
    A = sp.csr_matrix(make(), dtype=dtype)
    if np.dtype(dtype).kind == "c":
        A = (A + 0.5j * sp.triu(A, 1)).tocsr()
    A.sort_indices()
    offs, val = cpu.dia_from_csr(A.indptr, A.indices, A.data)
    assert offs.size and np.all(np.diff(offs) > 0)
    assert set(offs.tolist()) == set((A.tocoo().col - A.tocoo().row).tolist())
    rng = np.random.default_rng(0)
    x = rng.standard_normal(A.shape[0]).astype(dtype)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(A.shape[0])
    want = np.zeros_like(x)
    cpu.spmv.serial(A.indptr, A.indices, A.data, x, want)
    stencil = cpu.stencil_values(offs, val)  # constant coefficients: one value per diagonal
    assert stencil is not None
    for kernel in (cpu.dia_spmv_serial, cpu.dia_spmv_parallel):
        for form in (val, stencil):
            got = np.full_like(x, np.nan)
            kernel(offs, form, x, got)
            np.testing.assert_array_equal(got, want)
    # x may be longer than the matrix (a padded basis row): only its first n entries are read
    xp = np.concatenate([x, np.full(8, np.nan, dtype=x.dtype)])
    got = np.zeros_like(x)
    cpu.dia_spmv_serial(offs, val, xp, got)
    np.testing.assert_array_equal(got, want)


def test_dia_conversion_sums_duplicates_and_accepts_unsorted_rows():
    rows = np.array([0, 0, 1, 1, 1, 2, 2, 0])
    cols = np.array([1, 0, 2, 1, 0, 2, 1, 0])
    vals = np.arange(1.0, 9.0)
    indptr = np.array([0, 3, 6, 8])  # rows given in this (unsorted, duplicated) order
    order = np.argsort(rows, kind="stable")
    indices, data = cols[order], vals[order]
    offs, val = cpu.dia_from_csr(indptr, indices, data)
    dense = np.zeros((3, 3))
    np.add.at(dense, (rows, cols), vals)
    x = np.array([1.0, -2.0, 0.5])
    y = np.zeros(3)
    cpu.dia_spmv_serial(offs, val, x, y)
    np.testing.assert_allclose(y, dense @ x)


def test_dia_conversion_declines_unbanded_matrices():
    R = sp.random(400, 400, density=0.05, format="csr", random_state=1)
    offs, val = cpu.dia_from_csr(R.indptr, R.indices, R.data)
    assert offs.size == 0 and val.shape == (0, 400)
    # few diagonals but mostly empty: a corner entry would store n − 1 zeros
    A = (sp.eye(300) + sp.csr_matrix(([1.0], ([0], [299])), shape=(300, 300))).tocsr()
    offs, _ = cpu.dia_from_csr(A.indptr, A.indices, A.data)
    assert offs.size == 0
    offs, _ = cpu.dia_from_csr(A.indptr, A.indices, A.data, max_padding=1000.0)
    assert offs.tolist() == [0, 299]


STORAGES = ("csr", "diagonals", "constant diagonals")


_DIA_FOR_SOLVER = cpu.dia_for_solver


def _storage(monkeypatch, module, storage):
    """Make ``module``'s solver use ``storage`` for a small matrix (diagonals from the first row on)."""
    monkeypatch.setattr(module, "_DIA_MIN_ROWS", 10**9 if storage == "csr" else 0)
    monkeypatch.setattr(cpu, "dia_for_solver",
                        lambda *a, **k: _DIA_FOR_SOLVER(*a, constant=storage != "diagonals"))


@pytest.mark.parametrize("jacobi", [False, True])
def test_gmres_gives_the_same_iterates_with_and_without_diagonal_storage(monkeypatch, jacobi):
    A = convection_diffusion((40, 40), eps=0.02, velocity=(1.0, 0.3)).tocsr()
    b = np.random.default_rng(4).standard_normal(A.shape[0])
    M = None
    if jacobi:
        from krylovlab import Jacobi

        M = Jacobi(A)
    out = []
    for storage in STORAGES:
        _storage(monkeypatch, gmres_module, storage)
        res = GMRES(A, restart=25, rtol=1e-9, M=M).solve(b)
        assert res.extras["path"] == "jitted" and res.converged and res.extras["storage"] == storage
        out.append(res)
    for other in out[1:]:
        assert other.iterations == out[0].iterations
        np.testing.assert_array_equal(other.x, out[0].x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_dia_spmv_dot_matches_csr_product_and_dot(dtype):
    A = convection_diffusion((70, 50), eps=0.05, velocity=(1.0, -0.4)).tocsr().astype(dtype)  # 3 500 rows: 2 blocks
    n = A.shape[0]
    rng = np.random.default_rng(6)
    x = rng.standard_normal(n).astype(dtype)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(n)
    offs, val = cpu.dia_from_csr(A.indptr, A.indices, A.data)
    y_csr = np.empty(n, dtype)
    cpu.spmv.serial(A.indptr, A.indices, A.data, x, y_csr)
    results = []
    for kernel in (cpu.dia_spmv_dot_serial, cpu.dia_spmv_dot_parallel):
        y = np.full(n, np.nan, dtype)
        s = kernel(offs, val, x, y)
        np.testing.assert_array_equal(y, y_csr)  # the product: bitwise the CSR kernel's
        results.append(s)
        # the constant-stencil form: the same product and the same dot, bit for bit
        y2 = np.full(n, np.nan, dtype)
        assert kernel(offs, cpu.stencil_values(offs, val), x, y2) == s
        np.testing.assert_array_equal(y2, y_csr)
    # block sums in block order, serial and threaded: equal up to rounding
    assert abs(results[0] - results[1]) <= 1e-14 * np.abs(x).dot(np.abs(y_csr))
    ref = np.vdot(x.astype(np.complex128), y_csr.astype(np.complex128))
    tol = 1e-4 if dtype == np.float32 else 1e-12
    assert abs(results[0] - ref) <= tol * np.abs(x).dot(np.abs(y_csr))


def test_cg_uses_diagonal_storage_and_agrees_with_csr(monkeypatch):
    from krylovlab import CG
    from krylovlab.gallery import poisson
    from krylovlab.krylov import cg as cg_module

    A = poisson((60, 60)).tocsr()
    b = np.random.default_rng(2).standard_normal(A.shape[0])
    out = []
    for storage in STORAGES:
        _storage(monkeypatch, cg_module, storage)
        res = CG(A, rtol=1e-10).solve(b)
        assert res.converged and res.extras["path"] == "jitted" and res.extras["storage"] == storage
        assert np.linalg.norm(b - A @ res.x) <= 1e-10 * np.linalg.norm(b)
        out.append(res)
    # the products are bitwise equal, the dot pᴴAp is summed in another order: the same iterates to rounding
    assert abs(out[0].iterations - out[1].iterations) <= 1
    np.testing.assert_allclose(out[0].x, out[1].x, rtol=1e-8, atol=1e-10)
    # both diagonal forms sum everything in the same order: bit for bit
    assert out[2].iterations == out[1].iterations
    np.testing.assert_array_equal(out[2].x, out[1].x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dia_gather_refills_a_pattern(dtype):
    """`dia_positions` + `dia_gather` give `dia_from_csr` of any matrix sharing the pattern, also in another
    precision and with unsorted rows."""
    A = sp.csr_matrix(convection_diffusion((13, 11)))
    A.sort_indices()
    offs, _ = cpu.dia_from_csr(A.indptr, A.indices, A.data)
    pos = cpu.dia_positions(A.indptr, A.indices, offs)
    assert pos.shape == (offs.size, A.shape[0]) and (pos >= 0).sum() == A.nnz
    B = A.copy()
    B.data = np.random.default_rng(1).standard_normal(B.nnz)
    val = np.full((offs.size, A.shape[0]), np.nan, dtype=dtype)
    cpu.dia_gather(B.data, pos, val)
    _, want = cpu.dia_from_csr(B.indptr, B.indices, B.data)
    np.testing.assert_array_equal(val, want.astype(dtype))
    # a row stored in reverse order still lands on its diagonals
    C = B.copy()
    lo, hi = C.indptr[5], C.indptr[6]
    C.indices[lo:hi] = C.indices[lo:hi][::-1].copy()
    C.data[lo:hi] = C.data[lo:hi][::-1].copy()
    pos_c = cpu.dia_positions(C.indptr, C.indices, offs)
    cpu.dia_gather(C.data, pos_c, val)
    np.testing.assert_array_equal(val, want.astype(dtype))


def test_diagonal_copy_follows_a_sequence():
    """`DiagonalCopy` converts once per pattern and gathers the values of later matrices with it; a new
    pattern converts anew; small or unbanded matrices give empty offsets."""
    A = sp.csr_matrix(poisson((30, 30)))
    copy = cpu.DiagonalCopy(np.float32, min_rows=100)
    off, val = copy.update(A)
    assert off.size == 5 and val.dtype == np.float32
    B = A.copy()
    B.data = np.random.default_rng(2).standard_normal(B.nnz)
    off_b, val_b = copy.update(B)
    _, want = cpu.dia_from_csr(B.indptr, B.indices, B.data)
    assert val_b is val  # gathered into the same storage
    np.testing.assert_array_equal(val_b, want.astype(np.float32))
    C = sp.csr_matrix(poisson((20, 45)))  # another pattern, same kind
    off_c, val_c = copy.update(C)
    want_off, want_c = cpu.dia_from_csr(C.indptr, C.indices, C.data)
    np.testing.assert_array_equal(off_c, want_off)
    assert not np.array_equal(off_c, off)
    np.testing.assert_array_equal(val_c, want_c.astype(np.float32))
    assert cpu.DiagonalCopy(min_rows=10_000).update(A)[0].size == 0  # small: CSR
    dense = sp.csr_matrix(np.random.default_rng(0).random((150, 150)))
    assert cpu.DiagonalCopy(min_rows=100).update(dense)[0].size == 0  # unbanded: CSR


def test_stencil_values_only_for_constant_diagonals():
    """One value per diagonal apart from boundary zeros gives the constant form, with the diagonals that
    never meet a zero marked full; varying coefficients or a NaN keep the values."""
    A = sp.csr_matrix(poisson((6, 5)))
    offs, val = cpu.dia_from_csr(A.indptr, A.indices, A.data)
    consts, full, mask = cpu.stencil_values(offs, val)
    np.testing.assert_array_equal(consts, [-1.0, -1.0, 4.0, -1.0, -1.0])
    assert dict(zip(offs.tolist(), full.tolist())) == {-5: 1, -1: 0, 0: 1, 1: 0, 5: 1}
    np.testing.assert_array_equal(mask, val != 0)
    varying = A.copy()
    varying.data = varying.data * (1 + 0.01 * np.arange(varying.nnz))
    offs_v, val_v = cpu.dia_from_csr(varying.indptr, varying.indices, varying.data)
    assert cpu.stencil_values(offs_v, val_v) is None
    val_nan = val.copy()
    val_nan[2, 3] = np.nan
    assert cpu.stencil_values(offs, val_nan) is None
    # the solver-facing helper picks the form, and reports it
    o, form = cpu.dia_for_solver(A.indptr, A.indices, A.data, min_rows=1)
    assert isinstance(form, tuple) and cpu.dia_storage_name(o, form) == "constant diagonals"
    o, form = cpu.dia_for_solver(varying.indptr, varying.indices, varying.data, min_rows=1)
    assert not isinstance(form, tuple) and cpu.dia_storage_name(o, form) == "diagonals"
    o, form = cpu.dia_for_solver(A.indptr, A.indices, A.data, min_rows=10**9)
    assert cpu.dia_storage_name(o, form) == "csr"
