"""GPU kernels against the numpy reference (needs CuPy and a CUDA device;
skipped cleanly otherwise).  Same matrices and dtypes as the CPU tests."""

import numpy as np
import pytest
from kernel_cases import DTYPES, MATRICES, _close, _matrix, _vec

from krylovlab.backend import cupy_available
from krylovlab.kernels import _reference as ref

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not cupy_available(), reason="needs CuPy and a CUDA device"),
]


@pytest.fixture(scope="module")
def cp():
    import cupy

    return cupy


@pytest.fixture(scope="module")
def gpu():
    from krylovlab.kernels import gpu

    return gpu


@pytest.mark.parametrize("warp", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mname", list(MATRICES))
def test_spmv_and_spmv_dot(cp, gpu, monkeypatch, mname, dtype, warp):
    monkeypatch.setattr(gpu, "WARP_ROW_THRESHOLD", 0 if warp else 10**9)
    indptr, indices, data = _matrix(mname, dtype)
    n = len(indptr) - 1
    x = _vec(np.random.default_rng(0), n, dtype)
    y_ref = np.zeros(n, dtype)
    s_ref = ref.spmv_dot(indptr, indices, data, x, y_ref)
    d = [cp.asarray(v) for v in (indptr, indices, data, x)]
    scale = float(np.abs(data).sum()) if data.size else 1.0
    y = cp.full(n, np.nan, dtype=dtype)
    gpu.spmv(*d, y)
    _close(y.get(), y_ref, dtype, scale)
    y = cp.full(n, np.nan, dtype=dtype)
    s = gpu.spmv_dot(*d, y)
    assert isinstance(s, cp.ndarray) and s.ndim == 0
    _close(y.get(), y_ref, dtype, scale)
    _close(complex(s), s_ref, dtype, scale * n)


def test_spmv_many_blocks(cp, gpu):
    from krylovlab import gallery

    a = gallery.poisson((300, 300))
    x = np.random.default_rng(1).standard_normal(a.shape[0])
    y = cp.empty(a.shape[0])
    gpu.spmv(cp.asarray(a.indptr), cp.asarray(a.indices), cp.asarray(a.data), cp.asarray(x), y)
    np.testing.assert_allclose(y.get(), a @ x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 17, 100_000])
def test_blas1(cp, gpu, n, dtype):
    rng = np.random.default_rng(n)
    x, y, p, q = (_vec(rng, n, dtype) for _ in range(4))
    X, Y, P, Q = (cp.asarray(v) for v in (x, y, p, q))
    _close(complex(gpu.dot(X, Y)), ref.dot(x, y), dtype, n)
    _close(float(gpu.norm2(X)), ref.norm2(x), dtype, n)

    complex_ = np.dtype(dtype).kind == "c"
    a = 0.75 - 0.5j if complex_ else 0.75
    Ya, yr = Y.copy(), y.copy()
    gpu.axpby(a, X, cp.asarray(-1.5), Ya)  # host and device scalars
    ref.axpby(a, x, -1.5, yr)
    _close(Ya.get(), yr, dtype, 2)

    alpha = 0.3 + 0.2j if complex_ else 0.3
    Xa, Ra = X.copy(), Y.copy()
    xr, rr = x.copy(), y.copy()
    s = gpu.cg_update(cp.asarray(alpha, dtype=dtype), P, Q, Xa, Ra)
    s_ref = ref.cg_update(alpha, p, q, xr, rr)
    _close(Xa.get(), xr, dtype, 2)
    _close(Ra.get(), rr, dtype, 2)
    _close(float(s), s_ref, dtype, n)

    real = np.zeros(1, dtype).real.dtype
    for diag_dtype in {real, np.dtype(dtype)}:
        inv_diag = rng.uniform(0.5, 2.0, n).astype(diag_dtype)
        Z, zr = cp.zeros(n, dtype=dtype), np.zeros(n, dtype)
        s = gpu.jacobi(cp.asarray(inv_diag), X, Z)
        s_ref = ref.jacobi(inv_diag, x, zr)
        _close(Z.get(), zr, dtype, 2)
        _close(complex(s), s_ref, dtype, n)


def test_bad_inputs(cp, gpu):
    x = cp.ones(4)
    with pytest.raises(TypeError, match="dtype"):
        gpu.dot(x, cp.ones(4, dtype=cp.float32))
    with pytest.raises(ValueError, match="contiguous"):
        gpu.norm2(cp.ones(8)[::2])
    with pytest.raises(TypeError, match="complex scalar"):
        gpu.axpby(1j, x, 1.0, x.copy())
