"""Shared kernel test cases (gallery matrices, dtypes, tolerances) for the
CPU, array-API and GPU kernel tests."""

import numpy as np
import scipy.sparse as sp

from krylovlab import gallery

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def _empty_row_matrix():
    a = sp.random(9, 9, density=0.3, random_state=1, format="lil")
    a[3, :] = 0  # a row with no entries
    a[7, :] = 0
    a.setdiag(np.arange(1, 10))
    a[3, 3] = 0
    return sp.csr_matrix(a)


def _int64(a):
    a = sp.csr_matrix(a)
    a.indices = a.indices.astype(np.int64)
    a.indptr = a.indptr.astype(np.int64)
    return a


MATRICES = {
    "poisson1d": lambda: gallery.poisson((7,)),
    "poisson2d": lambda: gallery.poisson((6, 5)),
    "poisson3d": lambda: gallery.poisson((3, 3, 3)),
    "convdiff": lambda: gallery.convection_diffusion((6, 5)),
    "anisotropic": lambda: gallery.anisotropic_diffusion(5, epsilon=0.01, theta=0.3),
    "indefinite": lambda: gallery.indefinite_symmetric((5, 4)),
    "hermitian": lambda: gallery.complex_hermitian((4, 5), flux=0.3),
    "random_spd": lambda: gallery.random_spd(30, cond=100, rng=0, density=0.2),
    "n1": lambda: sp.csr_matrix(np.array([[3.0]])),
    "empty_rows": _empty_row_matrix,
    "int64_indices": lambda: _int64(gallery.poisson((5, 4))),
    "n0": lambda: sp.csr_matrix((0, 0)),
}


def _tol(dtype):
    return 2e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-12


def _vec(rng, n, dtype):
    v = rng.standard_normal(n)
    if np.dtype(dtype).kind == "c":
        v = v + 1j * rng.standard_normal(n)
    return v.astype(dtype)


def _matrix(name, dtype):
    a = MATRICES[name]()
    data = a.data
    if np.dtype(dtype).kind == "c" and data.dtype.kind != "c":
        data = data * (1 + 0.25j)  # make the values genuinely complex
    elif np.dtype(dtype).kind == "f" and data.dtype.kind == "c":
        data = data.real
    return a.indptr, a.indices, np.ascontiguousarray(data, dtype=dtype)


def _close(got, want, dtype, scale=1.0):
    atol = _tol(dtype) * max(1.0, scale)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=_tol(dtype), atol=atol)


