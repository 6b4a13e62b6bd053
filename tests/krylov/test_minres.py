"""MINRES: the jitted and Python paths, the residual recurrence, shift, preconditioning."""

from __future__ import annotations

import numpy as np
import pyamg
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as ssl

import krylovlab
from krylovlab import MINRES, History, Jacobi, RecordIterates, Status
from krylovlab import gallery


def _resid(A, x, b):
    return float(np.linalg.norm(b - A @ x))


def _indef(shape=(12, 12), dtype=np.float64):
    return gallery.indefinite_symmetric(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
@pytest.mark.parametrize("jacobi", [False, True])
def test_jitted_and_python_paths_agree(dtype, jacobi):
    A = _indef(dtype=dtype) if dtype != np.complex128 else gallery.complex_hermitian((10, 10), shift=2.0)
    b = np.random.default_rng(0).standard_normal(A.shape[0]).astype(dtype)
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    M = Jacobi(A) if jacobi and dtype != np.complex128 else None
    fast = MINRES(A, rtol=rtol, M=M, history=True).solve(b)
    slow = MINRES(A, rtol=rtol, M=M, history=True, monitors=[lambda info: None]).solve(b)
    assert fast.extras.get("path") == "jitted" and slow.extras.get("path") is None
    assert fast.converged and slow.converged
    # the two paths round differently (the Python path keeps its scalars in double)
    assert abs(fast.iterations - slow.iterations) <= (1 if dtype != np.float32 else 0.05 * slow.iterations)
    assert len(fast.history) == fast.iterations + 1
    assert fast.x.dtype == dtype
    scale = np.linalg.norm(slow.x)
    assert np.linalg.norm(fast.x - slow.x) <= (1e-3 if dtype == np.float32 else 1e-6) * scale
    assert _resid(A, fast.x, b) <= rtol * np.linalg.norm(b) * 1.001


@pytest.mark.parametrize("M", ["diag", "amg", "jacobi"])
def test_preconditioned_residual_recurrence_tracks_true_residual(M):
    """With M, MINRES carries ‖b − A x_k‖₂ by recurrence; check it iteration by iteration."""
    A = gallery.poisson((14, 14)) if M == "amg" else _indef()
    n = A.shape[0]
    b = np.random.default_rng(2).standard_normal(n)
    if M == "diag":
        Mop = sp.diags(np.random.default_rng(3).uniform(0.5, 2.0, n)).tocsr()
    elif M == "amg":
        Mop = pyamg.smoothed_aggregation_solver(A).aspreconditioner()
    else:
        Mop = Jacobi(A)
    hist, rec = History(), RecordIterates()
    res = MINRES(A, rtol=1e-10, M=Mop, monitors=[hist, rec]).solve(b)
    assert res.converged
    for rn, x in zip(hist.rnorms, rec.iterates):
        true = _resid(A, x, b)
        assert abs(rn - true) <= 1e-8 * np.linalg.norm(b) + 1e-6 * true


def test_unpreconditioned_norm_is_residual_norm():
    A, b = _indef(), np.ones(144)
    hist, rec = History(), RecordIterates()
    MINRES(A, rtol=1e-10, monitors=[hist, rec]).solve(b)
    for rn, x in zip(hist.rnorms, rec.iterates):
        assert abs(rn - _resid(A, x, b)) <= 1e-9 * np.linalg.norm(b)
    assert all(h2 <= h1 * (1 + 1e-12) for h1, h2 in zip(hist.rnorms, hist.rnorms[1:]))  # monotone


def test_matches_scipy_and_is_stricter():
    A = _indef((16, 16))
    b = np.random.default_rng(4).standard_normal(A.shape[0])
    x_s, info_s = ssl.minres(A, b, rtol=1e-6)
    res = MINRES(A, rtol=1e-6).solve(b)
    assert info_s == 0 and res.converged
    assert _resid(A, res.x, b) <= 1e-6 * np.linalg.norm(b)
    assert _resid(A, res.x, b) <= _resid(A, x_s, b) * 1.001


@pytest.mark.parametrize("kind", ["csr", "dense", "linop"])
def test_shift(kind):
    base = gallery.poisson((10, 10))
    shift = 1.3  # inside the spectrum: A − shift·I is indefinite
    A = {"csr": base, "dense": base.toarray(), "linop": ssl.aslinearoperator(base)}[kind]
    b = np.ones(100)
    res = MINRES(A, shift=shift, rtol=1e-10).solve(b)
    As = base - shift * sp.identity(100)
    assert res.converged
    assert _resid(As, res.x, b) <= 1e-10 * np.linalg.norm(b) * 1.001
    assert np.linalg.norm(res.x - np.linalg.solve(As.toarray(), b)) <= 1e-6 * np.linalg.norm(res.x)
    via_solve = krylovlab.solve(base, b, method="minres", shift=shift, rtol=1e-10)
    np.testing.assert_allclose(via_solve.x, res.x)


def test_complex_hermitian_indefinite():
    A = gallery.complex_hermitian((10, 10), shift=1.0)
    b = np.random.default_rng(5).standard_normal(100) + 1j
    res = MINRES(A, rtol=1e-10).solve(b)
    assert res.converged and res.x.dtype == np.complex128
    np.testing.assert_allclose(res.x, np.linalg.solve(A.toarray(), b), rtol=1e-6, atol=1e-8)


def test_parallel_path_agrees_with_python_path():
    """n ≥ PARALLEL_THRESHOLD takes the threaded kernels; compare 40 iterations with the Python loop."""
    A = gallery.indefinite_symmetric((150, 150))
    b = np.random.default_rng(6).standard_normal(A.shape[0])
    assert A.shape[0] >= krylovlab.kernels.cpu.PARALLEL_THRESHOLD
    fast = MINRES(A, rtol=0.0, maxiter=40).solve(b)
    slow = MINRES(A, rtol=0.0, maxiter=40, monitors=[lambda info: None]).solve(b)
    assert fast.status == slow.status == Status.MAXITER
    np.testing.assert_allclose(fast.x, slow.x, rtol=1e-9, atol=1e-12 * np.abs(slow.x).max())
    assert abs(fast.rnorm - slow.rnorm) <= 1e-9 * slow.rnorm


def test_invariant_krylov_space_ends_early():
    """b an eigenvector: one iteration solves the system."""
    A = sp.diags(np.array([-2.0, 1.0, 3.0, 5.0])).tocsr()
    b = np.array([0.0, 0.0, 2.0, 0.0])
    res = MINRES(A, rtol=1e-12).solve(b)
    assert res.converged and res.iterations == 1
    np.testing.assert_allclose(res.x, [0, 0, 2 / 3, 0], atol=1e-14)


def test_counts_and_reuse():
    A = _indef()
    b = np.ones(144)
    solver = MINRES(A, rtol=1e-8, M=Jacobi(A))
    r1 = solver.solve(b)
    r2 = solver.solve(b)
    np.testing.assert_array_equal(r1.x, r2.x)
    assert r1.nprec == r1.iterations + 1
    assert r1.nmatvec >= r1.iterations
    solver.update_operator(2 * A)
    r3 = solver.solve(b)
    np.testing.assert_allclose(r3.x, r1.x / 2, rtol=1e-6, atol=1e-9)


def test_default_maxiter_is_five_n():
    A = _indef((6, 6))
    res = MINRES(A, rtol=0.0).solve(np.ones(36))
    assert res.iterations <= 5 * 36
