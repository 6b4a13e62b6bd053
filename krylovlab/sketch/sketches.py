"""Random sketching operators S (d × m) applied to tall matrices and vectors.

Four families, each reproducible from ``rng`` (a seed or a
``numpy.random.Generator``) and scaled so that E[SᵀS] = I:

=================  =======================================================  ==================
name               S                                                        cost of S A
=================  =======================================================  ==================
``"gaussian"``     i.i.d. N(0, 1/d) entries (generated in column blocks      O(d · nnz(A))
                   from the seed, never stored whole)
``"srht"``         √(M/d) · P · F · D: random signs D, an orthonormal fast    O(m n log m)
                   transform F (DCT-II of length m, or Walsh–Hadamard of
                   length M = 2^⌈log₂ m⌉), then d rows sampled uniformly
                   without replacement (Ailon–Chazelle 2006; Tropp 2011;
                   Blendenpik uses the DCT form)
``"countsketch"``  one ±1 per column at a uniformly random row               O(nnz(A))
                   (Charikar–Chen–Farach-Colton 2002; Clarkson–Woodruff 2013)
``"sparse-sign"``  ``nnz_per_col`` (default 8) ±1/√s entries per column in    O(s · nnz(A))
                   distinct random rows (SJLT: Kane–Nelson 2014; Meng–Mahoney
                   2013; Tropp et al. 2017 use s = 8)
=================  =======================================================  ==================

Subspace embeddings for an n-dimensional column space need d ≳ n log n
(Gaussian, SRHT), d ≳ n²  in theory but d ≈ 2–4 n in practice (CountSketch),
d ≳ n log n with s ≈ log n (sparse sign).  For sketch-and-precondition the
embedding distortion only changes the iteration count; for sketch-and-solve
it is the error (see `krylovlab.sketch.lstsq`).

Dense inputs are processed with numba kernels (`krylovlab.kernels.cpu`), sparse
inputs directly from their CSR arrays, CuPy inputs with the CuPy kernels in
`krylovlab.kernels.gpu._sketch` (the random draws are made on the host with
the same generator, so a seed gives the same S on both devices).
"""

from __future__ import annotations

import abc

import math

import numba
import numpy as np
import scipy.fft
import scipy.sparse as sp

from .._operator import is_device_array
from ..kernels import cpu

__all__ = [
    "SketchOperator",
    "GaussianSketch",
    "SRHT",
    "CountSketch",
    "SparseSign",
    "make_sketch",
    "SKETCHES",
]

_GAUSS_BLOCK = 2048  # columns of S generated per seeded block


def _generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)) or (
        isinstance(rng, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in rng)
    ):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an integer seed or a numpy.random.Generator, got {type(rng).__name__}")


def _check_size(d, m):
    for name, v in (("sketch_size", d), ("m", m)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(d), int(m)


class SketchOperator(abc.ABC):
    """Base class: a random d × m matrix S with a fast ``S @ A``.

    Attributes
    ----------
    name : str
        Registry name (``"gaussian"``, ``"srht"``, ``"countsketch"``, ``"sparse-sign"``).
    shape : (d, m)
    """

    name = ""

    def __init__(self, d: int, m: int, rng=None):
        self.d, self.m = _check_size(d, m)
        self.shape = (self.d, self.m)
        self._draw(_generator(rng))

    @abc.abstractmethod
    def _draw(self, rng):
        """Draw the random parts of S from ``rng``."""

    # ------------------------------------------------------------------ public
    def apply(self, A):
        """Return ``S @ A`` for a dense or sparse (m × n) matrix or a length-m vector.

        Dense host inputs give a numpy array, sparse inputs a dense numpy
        array, CuPy inputs a CuPy array.  The result dtype is float64
        (complex128 for complex input).
        """
        vec = getattr(A, "ndim", 2) == 1
        if is_device_array(A):
            return self._apply_gpu(A)
        if sp.issparse(A):
            if A.shape[0] != self.m:
                raise ValueError(f"sketch has {self.m} columns but A has {A.shape[0]} rows")
            a = A.tocsr() if A.format != "csr" else A
            dtype = np.result_type(a.dtype, np.float64)
            return self._apply_csr(a, dtype)
        A = np.asarray(A)
        if A.dtype.kind not in "fciub":
            raise TypeError(f"cannot sketch an array of dtype {A.dtype}")
        if A.ndim not in (1, 2) or A.shape[0] != self.m:
            raise ValueError(f"sketch has {self.m} columns but the input has shape {A.shape}")
        dtype = np.result_type(A.dtype, np.float64)
        A2 = np.ascontiguousarray(A.reshape(self.m, -1), dtype=dtype)
        out = self._apply_dense(A2)
        return out.reshape(self.d) if vec else out

    __matmul__ = apply

    def todense(self) -> np.ndarray:
        """The explicit d × m matrix (for checks on small sizes)."""
        return self.apply(np.eye(self.m))

    def __repr__(self):
        return f"{type(self).__name__}(d={self.d}, m={self.m})"

    # ------------------------------------------------------------- per family
    @abc.abstractmethod
    def _apply_dense(self, A):
        """S @ A for a dense host array."""

    @abc.abstractmethod
    def _apply_csr(self, a, dtype):
        """S @ A for a host CSR matrix."""

    @abc.abstractmethod
    def _apply_gpu(self, A):
        """S @ A for a CuPy array."""


# ---------------------------------------------------------------------------- sparse signs
class SparseSign(SketchOperator):
    """Sparse sign embedding (SJLT): ``nnz_per_col`` entries ±1/√s per column.

    Parameters
    ----------
    d : int
        Sketch size (rows of S).
    m : int
        Rows of the matrices it will be applied to.
    nnz_per_col : int
        Nonzeros per column (s); capped at d.
    rng : int, Generator or None

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.sketch import SparseSign
    >>> A = np.random.default_rng(0).standard_normal((1000, 10))
    >>> S = SparseSign(80, 1000, rng=1)
    >>> (S @ A).shape
    (80, 10)
    """

    name = "sparse-sign"

    def __init__(self, d, m, nnz_per_col: int = 8, rng=None):
        if isinstance(nnz_per_col, bool) or not isinstance(nnz_per_col, (int, np.integer)) or nnz_per_col < 1:
            raise ValueError(f"nnz_per_col must be a positive integer, got {nnz_per_col!r}")
        self.nnz_per_col = min(int(nnz_per_col), int(d))
        super().__init__(d, m, rng)

    def _draw(self, rng):
        m, d, s = self.m, self.d, self.nnz_per_col
        if s > 1 and 4 * s > d:  # dense regime: s distinct rows out of few, by ranking random keys
            rows = np.argsort(rng.random((m, d)), axis=1)[:, :s].astype(np.int64)
        else:
            rows = rng.integers(0, d, size=(m, s), dtype=np.int64)
        if s > 1 and 4 * s <= d:  # redraw the (rare) columns with a repeated row until all rows are distinct
            while True:
                srt = np.sort(rows, axis=1)
                bad = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))
                if bad.size == 0:
                    break
                rows[bad] = rng.integers(0, d, size=(bad.size, s), dtype=np.int64)
        self.rows = rows
        self.signs = rng.choice(np.array([-1.0, 1.0]), size=(m, s)) / math.sqrt(s)

    def _apply_dense(self, A):
        out = np.zeros((self.d, A.shape[1]), dtype=A.dtype)
        if A.flags.c_contiguous:
            # S by rows: each output row is summed in cache from whole contiguous rows of A (A is
            # streamed s times, but sequentially: measured 2-15x faster than column stripes at
            # 100 000 x 1 000, where the stripes' 8 KB row stride defeats the hardware prefetcher)
            ptr, src, sgn = self._row_form()
            cpu.gather_rows_dense(A, ptr, src, sgn.astype(A.dtype, copy=False), out)
        else:
            cpu.sparse_sign_dense(A, self.rows, self.signs, out)  # out ← S A, column stripes
        return out

    def _row_form(self):
        """S by rows (CSR: row pointers, source rows of A, signs), built once per sketch."""
        cached = getattr(self, "_rows_cache", None)
        if cached is None:
            St = self.tosparse().tocsr()
            St.sort_indices()
            cached = (St.indptr.astype(np.int64), St.indices.astype(np.int64), np.ascontiguousarray(St.data))
            self._rows_cache = cached
        return cached

    def _apply_csr(self, a, dtype):
        out = np.zeros((self.d, a.shape[1]), dtype=dtype)
        data = a.data if a.data.dtype == dtype else a.data.astype(dtype)
        cpu.sparse_sign_csr(a.indptr, a.indices, data, self.rows, self.signs, out)  # out ← S A
        return out

    def _apply_gpu(self, A):
        from ..kernels.gpu import _sketch as gk

        return gk.sparse_sign_apply(A, self.rows, self.signs, self.d)

    def tosparse(self) -> sp.csc_matrix:
        """S as a scipy CSC matrix (its column-wise definition)."""
        m, s = self.m, self.nnz_per_col
        indptr = np.arange(0, m * s + 1, s)
        return sp.csc_matrix((self.signs.ravel(), self.rows.ravel(), indptr), shape=(self.d, m))


class CountSketch(SparseSign):
    """CountSketch: one ±1 per column, in a uniformly random row.

    The same operator as `scipy.linalg.clarkson_woodruff_transform`, applied
    with one pass over the nonzeros (dense or CSR input).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from krylovlab.sketch import CountSketch
    >>> A = sp.random(500, 20, density=0.1, format="csr", random_state=0)
    >>> S = CountSketch(80, 500, rng=0)
    >>> np.allclose(S @ A, S.tosparse() @ A.toarray())
    True
    """

    name = "countsketch"

    def __init__(self, d, m, rng=None):
        super().__init__(d, m, nnz_per_col=1, rng=rng)


# -------------------------------------------------------------------------------- Gaussian
class GaussianSketch(SketchOperator):
    """Dense Gaussian sketch, entries N(0, 1/d).

    S is never stored: its columns are regenerated in blocks of 2048 from a
    seed drawn from ``rng``, so ``S @ A`` and ``S @ b`` use the same S and
    memory stays at O(d · 2048).

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.sketch import GaussianSketch
    >>> S = GaussianSketch(40, 300, rng=0)
    >>> np.allclose(S @ np.eye(300)[:, :3], S.todense()[:, :3])
    True
    """

    name = "gaussian"

    def _draw(self, rng):
        self.seed = int(rng.integers(0, 2**63 - 1))

    def block(self, k: int) -> np.ndarray:
        """Columns [k·2048, (k+1)·2048) of S."""
        j0 = k * _GAUSS_BLOCK
        j1 = min(self.m, j0 + _GAUSS_BLOCK)
        g = np.random.default_rng([self.seed, k])
        return g.standard_normal((self.d, j1 - j0)) / math.sqrt(self.d)

    def _nblocks(self):
        return (self.m + _GAUSS_BLOCK - 1) // _GAUSS_BLOCK

    def _apply_dense(self, A):
        out = np.zeros((self.d, A.shape[1]), dtype=A.dtype)
        for k in range(self._nblocks()):
            j0 = k * _GAUSS_BLOCK
            out += self.block(k) @ A[j0 : j0 + _GAUSS_BLOCK]  # S A = Σ_k S[:, blk] A[blk, :]
        return out

    def _apply_csr(self, a, dtype):
        out = np.zeros((self.d, a.shape[1]), dtype=dtype)
        for k in range(self._nblocks()):
            j0 = k * _GAUSS_BLOCK
            blk = a[j0 : j0 + _GAUSS_BLOCK]
            out += (blk.T @ self.block(k).T).T  # (A_blkᵀ S_blkᵀ)ᵀ: sparse × dense
        return out

    def _apply_gpu(self, A):
        import cupy

        out = None
        for k in range(self._nblocks()):
            j0 = k * _GAUSS_BLOCK
            part = cupy.asarray(self.block(k)) @ A[j0 : j0 + _GAUSS_BLOCK]
            out = part if out is None else out + part
        return out


# ----------------------------------------------------------------------------------- SRHT
class SRHT(SketchOperator):
    """Subsampled randomized trigonometric/Hadamard transform.

    Parameters
    ----------
    d, m : int
    transform : {"dct", "hadamard"}
        ``"dct"`` (default) uses scipy's orthonormal DCT-II of length m (no
        padding); ``"hadamard"`` pads to the next power of two and uses the
        numba fast Walsh–Hadamard kernel.
    rng : int, Generator or None

    Notes
    -----
    Sparse inputs are densified one block of columns at a time (the
    transform mixes all rows), so the cost is O(m n log m) whatever nnz is.

    Examples
    --------
    >>> import numpy as np
    >>> from krylovlab.sketch import SRHT
    >>> S = SRHT(64, 1000, rng=0)
    >>> x = np.random.default_rng(1).standard_normal(1000)
    >>> bool(0.5 < np.linalg.norm(S @ x) / np.linalg.norm(x) < 1.5)
    True
    """

    name = "srht"

    def __init__(self, d, m, transform: str = "dct", rng=None):
        if transform not in ("dct", "hadamard"):
            raise ValueError(f"transform must be 'dct' or 'hadamard', got {transform!r}")
        self.transform = transform
        self.M = int(m) if transform == "dct" else 1 << max(0, (int(m) - 1).bit_length())
        if int(d) > self.M:
            raise ValueError(f"SRHT sketch_size {d} exceeds the transform length {self.M}")
        super().__init__(d, m, rng)

    def _draw(self, rng):
        self.signs = rng.choice(np.array([-1.0, 1.0]), size=self.m)
        self.sample = np.sort(rng.choice(self.M, size=self.d, replace=False))
        self.scale = math.sqrt(self.M / self.d)

    def _transform_block(self, X):
        """Rows ``sample`` of √(M/d)·F·D·X for a dense (m × k) block X."""
        X = X * self.signs[:, None]  # D X
        if self.transform == "dct":
            Y = scipy.fft.dct(X, type=2, norm="ortho", axis=0, workers=numba.get_num_threads())  # F D X
            return Y[self.sample] * self.scale
        Y = np.zeros((self.M, X.shape[1]), dtype=X.dtype)
        Y[: self.m] = X
        cpu.fwht_rows(Y)  # Y ← H Y (unnormalised)
        return Y[self.sample] * (self.scale / math.sqrt(self.M))

    def _apply_dense(self, A):
        return self._transform_block(A)

    def _apply_csr(self, a, dtype):
        n = a.shape[1]
        width = max(1, min(n, (1 << 24) // max(self.M, 1)))
        out = np.empty((self.d, n), dtype=dtype)
        csc = a.tocsc()
        for j0 in range(0, n, width):
            blk = csc[:, j0 : j0 + width].toarray().astype(dtype, copy=False)
            out[:, j0 : j0 + width] = self._transform_block(blk)
        return out

    def _apply_gpu(self, A):
        from ..kernels.gpu import _sketch as gk

        return gk.srht_apply(A, self.signs, self.sample, self.scale, self.M, self.transform)


#: registry name → class
SKETCHES = {
    "gaussian": GaussianSketch,
    "srht": SRHT,
    "countsketch": CountSketch,
    "sparse-sign": SparseSign,
}


def make_sketch(kind: str, d: int, m: int, rng=None, **options) -> SketchOperator:
    """Build the sketch named ``kind`` (a key of `SKETCHES`) of size d × m.

    Examples
    --------
    >>> from krylovlab.sketch import make_sketch
    >>> make_sketch("countsketch", 40, 1000, rng=0)
    CountSketch(d=40, m=1000)
    """
    if isinstance(kind, SketchOperator):
        if kind.shape != (d, m) and kind.m != m:
            raise ValueError(f"the given sketch has shape {kind.shape}, but A has {m} rows")
        return kind
    if not isinstance(kind, str) or kind.lower() not in SKETCHES:
        raise ValueError(f"unknown sketch {kind!r}; valid sketches: {', '.join(SKETCHES)}")
    return SKETCHES[kind.lower()](d, m, rng=rng, **options)
