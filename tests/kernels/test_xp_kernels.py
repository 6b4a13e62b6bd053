"""The array-API kernels (krylovlab.kernels._xp) under array_api_strict,
against the numpy reference, on the same matrices and dtypes as the CPU tests."""

import numpy as np
import pytest

xp = pytest.importorskip("array_api_strict")

from krylovlab.kernels import _reference as ref  # noqa: E402
from krylovlab.kernels import _xp  # noqa: E402

from kernel_cases import DTYPES, MATRICES, _close, _matrix, _vec  # noqa: E402


def _a(v):
    return xp.asarray(np.asarray(v))


def _np(v):
    return np.asarray(v)  # array_api_strict arrays support the buffer protocol / __array__


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mname", list(MATRICES))
def test_spmv(mname, dtype):
    indptr, indices, data = _matrix(mname, dtype)
    n = len(indptr) - 1
    x = _vec(np.random.default_rng(0), n, dtype)
    y_ref = np.zeros(n, dtype)
    s_ref = ref.spmv_dot(indptr, indices, data, x, y_ref)
    y = _a(np.full(n, np.nan, dtype))
    s = _xp.spmv_dot(_a(indptr), _a(indices), _a(data), _a(x), y)
    scale = float(np.abs(data).sum()) if data.size else 1.0
    _close(_np(y), y_ref, dtype, scale)
    _close(complex(s), s_ref, dtype, scale * n)
    y2 = _a(np.full(n, np.nan, dtype))
    _xp.spmv(_a(indptr), _a(indices), _a(data), _a(x), y2)
    _close(_np(y2), y_ref, dtype, scale)


def test_spmv_uses_row_blocks(monkeypatch):
    monkeypatch.setattr(_xp, "_BLOCK_ELEMS", 7)  # force many small blocks
    indptr, indices, data = _matrix("anisotropic", np.float64)
    n = len(indptr) - 1
    x = _vec(np.random.default_rng(3), n, np.float64)
    y_ref = np.zeros(n)
    ref.spmv(indptr, indices, data, x, y_ref)
    y = xp.zeros(n, dtype=xp.float64)
    _xp.spmv(_a(indptr), _a(indices), _a(data), _a(x), y)
    np.testing.assert_allclose(_np(y), y_ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 33])
def test_blas1(n, dtype):
    rng = np.random.default_rng(n)
    x, y, p, q = (_vec(rng, n, dtype) for _ in range(4))
    _close(complex(_xp.dot(_a(x), _a(y))), ref.dot(x, y), dtype, n)
    _close(float(_xp.norm2(_a(x))), ref.norm2(x), dtype, n)

    a = 0.75 if np.dtype(dtype).kind == "f" else np.complex128(0.75 - 0.5j)
    ya, yr = _a(y), y.copy()
    _xp.axpby(a, _a(x), np.float32(-1.5), ya)  # numpy scalars are accepted
    ref.axpby(a, x, -1.5, yr)
    _close(_np(ya), yr, dtype, 2)

    alpha = 0.3 if np.dtype(dtype).kind == "f" else 0.3 + 0.2j
    xa, ra = _a(x), _a(y)
    xr, rr = x.copy(), y.copy()
    s = _xp.cg_update(alpha, _a(p), _a(q), xa, ra)
    s_ref = ref.cg_update(alpha, p, q, xr, rr)
    _close(_np(xa), xr, dtype, 2)
    _close(_np(ra), rr, dtype, 2)
    _close(float(s), s_ref, dtype, n)

    inv_diag = rng.uniform(0.5, 2.0, n).astype(np.real(np.zeros(1, dtype)).dtype)
    za, zr = _a(np.zeros(n, dtype)), np.zeros(n, dtype)
    s = _xp.jacobi(_a(inv_diag), _a(x), za)
    s_ref = ref.jacobi(inv_diag, x, zr)
    _close(_np(za), zr, dtype, 2)
    _close(complex(s), s_ref, dtype, n)


def test_complex_scalar_with_real_array_is_rejected():
    y = xp.zeros(3, dtype=xp.float64)
    with pytest.raises(TypeError, match="complex scalar"):
        _xp.axpby(1 + 2j, xp.ones(3, dtype=xp.float64), 1.0, y)
    with pytest.raises(TypeError, match="__array_namespace__"):
        _xp.dot([1.0], [2.0])


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_sor_sweep(dtype):
    indptr, indices, data = _matrix("convdiff", dtype)
    n = len(indptr) - 1
    rng = np.random.default_rng(4)
    b, x0 = _vec(rng, n, dtype), _vec(rng, n, dtype)
    xa, xr = _a(x0), x0.copy()
    _xp.sor_sweep(_a(indptr), _a(indices), _a(data), xa, _a(b), 1.2, n - 1, -1, -1)
    ref.sor_sweep(indptr, indices, data, xr, b, 1.2, n - 1, -1, -1)
    _close(_np(xa), xr, dtype, 10)


def test_xp_kernels_match_numpy_namespace_too():
    # the same module on plain numpy arrays (numpy >= 2 implements the standard)
    indptr, indices, data = _matrix("poisson3d", np.float64)
    n = len(indptr) - 1
    x = _vec(np.random.default_rng(5), n, np.float64)
    y = np.zeros(n)
    _xp.spmv(indptr, indices, data, x, y)
    np.testing.assert_allclose(y, _reference_spmv(indptr, indices, data, x), rtol=1e-13)


def _reference_spmv(indptr, indices, data, x):
    y = np.zeros(len(indptr) - 1)
    ref.spmv(indptr, indices, data, x, y)
    return y
