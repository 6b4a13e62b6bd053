"""Every numba kernel (serial and parallel variants, and the size-dispatching
wrapper) against the numpy reference, on gallery matrices, in four dtypes,
plus edge cases: n = 0, n = 1, empty rows, int64 indices."""

import numpy as np
import pytest
import scipy.sparse as sp
from kernel_cases import DTYPES, MATRICES, _close, _matrix, _vec

from krylovlab import gallery
from krylovlab.kernels import _reference as ref
from krylovlab.kernels import cpu

KERNELS = ["spmv", "spmv_dot", "dot", "norm2", "axpby", "cg_update", "jacobi"]
VARIANTS = ["serial", "parallel", "dispatch"]
# The threaded variants have the serial bodies with prange; each numba
# specialisation costs about a second to compile in a fresh CI, so they are
# checked in one real and one complex dtype of different precisions.
PARALLEL_DTYPES = (np.float32, np.complex128)
VARIANT_DTYPES = [
    pytest.param(v, d, id=f"{v}-{np.dtype(d).name}")
    for v in VARIANTS
    for d in DTYPES
    if v != "parallel" or d in PARALLEL_DTYPES
]


def _kernel(name, variant):
    k = getattr(cpu, name)
    return k if variant == "dispatch" else getattr(k, variant)


@pytest.mark.parametrize("variant, dtype", VARIANT_DTYPES)
@pytest.mark.parametrize("mname", list(MATRICES))
def test_spmv_and_spmv_dot(mname, dtype, variant):
    indptr, indices, data = _matrix(mname, dtype)
    n = len(indptr) - 1
    rng = np.random.default_rng(0)
    x = _vec(rng, n, dtype)
    scale = float(np.abs(data).sum()) if data.size else 1.0
    y_ref = np.zeros(n, dtype)
    ref.spmv(indptr, indices, data, x, y_ref)
    y = np.full(n, np.nan, dtype)  # every entry must be written, empty rows included
    _kernel("spmv", variant)(indptr, indices, data, x, y)
    _close(y, y_ref, dtype, scale)
    y2 = np.full(n, np.nan, dtype)
    s = _kernel("spmv_dot", variant)(indptr, indices, data, x, y2)
    _close(y2, y_ref, dtype, scale)
    _close(s, ref.spmv_dot(indptr, indices, data, x, np.zeros(n, dtype)), dtype, scale * n)
    if n:
        # a dense check that the reference itself is right
        dense = sp.csr_matrix((data, indices, indptr), shape=(n, n)).toarray()
        _close(y_ref, dense @ x, dtype, scale)


@pytest.mark.parametrize("variant", ["serial", "parallel"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("mname", ["poisson3d", "empty_rows", "int64_indices", "n1", "n0", "long_rows"])
def test_spmv_rows_four_sums(mname, dtype, variant):
    """The four-accumulator SpMV for long rows (AMG coarse levels, Galerkin plans) against the reference;
    ``long_rows`` has rows of 0 to 40 entries, so every remainder of the four-way split occurs."""
    if mname == "long_rows":
        rng = np.random.default_rng(3)
        a = sp.random(60, 60, density=0.35, random_state=rng, format="csr")
        a = sp.csr_matrix(a.multiply(sp.csr_matrix((rng.random(60) < 0.9).astype(float)[:, None])))
        assert a.indptr[-1] > 0 and {int(c) % 4 for c in np.diff(a.indptr)} == {0, 1, 2, 3}
        indptr, indices = a.indptr, a.indices
        data = _vec(rng, a.nnz, dtype)
    else:
        indptr, indices, data = _matrix(mname, dtype)
    n = len(indptr) - 1
    x = _vec(np.random.default_rng(0), n, dtype)
    y_ref = np.zeros(n, dtype)
    ref.spmv(indptr, indices, data, x, y_ref)
    y = np.full(n, np.nan, dtype)
    getattr(cpu, f"spmv_rows_{variant}")(indptr, indices, data, x, y)
    _close(y, y_ref, dtype, float(np.abs(data).sum()) if data.size else 1.0)


@pytest.mark.parametrize("variant, dtype", VARIANT_DTYPES)
@pytest.mark.parametrize("n", [0, 1, 17, 1000])
def test_blas1(n, dtype, variant):
    rng = np.random.default_rng(n)
    x, y = _vec(rng, n, dtype), _vec(rng, n, dtype)
    _close(_kernel("dot", variant)(x, y), ref.dot(x, y), dtype, n)
    nrm = _kernel("norm2", variant)(x)
    _close(nrm, ref.norm2(x), dtype, np.sqrt(n))
    if n:
        _close(nrm, np.linalg.norm(x.astype(np.complex128)), dtype, np.sqrt(n))

    a = dtype(0.75) if np.dtype(dtype).kind == "f" else dtype(0.75 - 0.5j)
    b = dtype(-1.5)
    y1, y2 = y.copy(), y.copy()
    _kernel("axpby", variant)(a, x, b, y1)
    ref.axpby(a, x, b, y2)
    _close(y1, y2, dtype, 2)

    p, q = _vec(rng, n, dtype), _vec(rng, n, dtype)
    x1, r1 = x.copy(), y.copy()
    x2, r2 = x.copy(), y.copy()
    alpha = dtype(0.3) if np.dtype(dtype).kind == "f" else dtype(0.3 + 0.2j)
    rr = _kernel("cg_update", variant)(alpha, p, q, x1, r1)
    rr_ref = ref.cg_update(alpha, p, q, x2, r2)
    _close(x1, x2, dtype, 2)
    _close(r1, r2, dtype, 2)
    _close(rr, rr_ref, dtype, n)
    assert np.ndim(rr) == 0 and float(np.imag(rr)) == 0.0

    inv_diag = (rng.uniform(0.5, 2.0, n)).astype(np.dtype(dtype).type(0).real.dtype)
    z1, z2 = np.full(n, np.nan, dtype), np.zeros(n, dtype)
    s1 = _kernel("jacobi", variant)(inv_diag, x, z1)
    s2 = ref.jacobi(inv_diag, x, z2)
    _close(z1, z2, dtype, 2)
    _close(s1, s2, dtype, n)


def test_dispatch_exposes_both_variants_and_agrees_across_threshold():
    for name in KERNELS:
        k = getattr(cpu, name)
        assert k.serial is not k.parallel and k.__name__ == name
    rng = np.random.default_rng(5)
    for n in (cpu.PARALLEL_THRESHOLD - 1, cpu.PARALLEL_THRESHOLD):
        x, y = rng.standard_normal(n), rng.standard_normal(n)
        assert np.isclose(cpu.dot(x, y), x @ y, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mname", ["poisson2d", "convdiff", "hermitian", "int64_indices", "n1"])
def test_sor_sweep(mname, dtype):
    indptr, indices, data = _matrix(mname, dtype)
    n = len(indptr) - 1
    rng = np.random.default_rng(1)
    b, x0 = _vec(rng, n, dtype), _vec(rng, n, dtype)
    for omega, (start, stop, step) in [(1.0, (0, n, 1)), (1.3, (n - 1, -1, -1)), (0.8, (1, n, 2))]:
        x1, x2 = x0.copy(), x0.copy()
        cpu.sor_sweep(indptr, indices, data, x1, b, omega, start, stop, step)
        ref.sor_sweep(indptr, indices, data, x2, b, omega, start, stop, step)
        _close(x1, x2, dtype, 10)


@pytest.mark.parametrize("dia", [False, True])
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_cg_csr_solves(dtype, parallel, dia):
    a = gallery.poisson((12, 12)) if dtype == np.float64 else gallery.complex_hermitian((12, 12))
    a = sp.csr_matrix(a, dtype=dtype)
    n = a.shape[0]
    b = _vec(np.random.default_rng(2), n, dtype)
    x = np.zeros(n, dtype)
    tol = 1e-10 * np.linalg.norm(b)
    hist = np.empty(501)
    offs, vals = cpu.dia_from_csr(a.indptr, a.indices, a.data) if dia else \
        (np.zeros(0, np.int64), np.zeros((0, n), dtype))
    assert offs.size == (5 if dia else 0)
    it, status, rn, nmv = cpu.cg_csr(a.indptr, a.indices, a.data, np.empty(0, dtype), b, x, tol, 500,
                                     hist, False, parallel, offs, vals)
    assert status == 2 and 0 < it < 500
    assert np.linalg.norm(b - a @ x) <= 10 * tol
    np.testing.assert_allclose(x, np.linalg.solve(a.toarray(), b), rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------ property test
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def _raw_csr(draw):
    """Arbitrary CSR arrays: empty rows, unsorted column indices, duplicate entries."""
    n = draw(st.integers(0, 25))
    counts = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    nnz = int(indptr[-1])
    indices = np.array(draw(st.lists(st.integers(0, max(n - 1, 0)), min_size=nnz, max_size=nnz)), dtype=np.int32)
    seed = draw(st.integers(0, 2**31 - 1))
    return indptr, indices, seed


@settings(max_examples=40, deadline=None)
@given(_raw_csr(), st.sampled_from([np.float64, np.complex128]), st.sampled_from(["serial", "parallel"]))
def test_spmv_on_arbitrary_csr_matches_dense(csr, dtype, variant):
    indptr, indices, seed = csr
    n = len(indptr) - 1
    rng = np.random.default_rng(seed)
    data = _vec(rng, len(indices), dtype)
    x = _vec(rng, n, dtype)
    dense = np.zeros((n, n), dtype)
    for i in range(n):
        for k in range(indptr[i], indptr[i + 1]):
            dense[i, indices[k]] += data[k]  # duplicates add up
    y = np.full(n, np.nan, dtype)
    s = _kernel("spmv_dot", variant)(indptr, indices, data, x, y)
    _close(y, dense @ x, dtype, 10)
    _close(s, np.vdot(x, dense @ x), dtype, 10 * max(n, 1))
