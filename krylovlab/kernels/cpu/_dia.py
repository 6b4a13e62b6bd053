"""Diagonal-storage SpMV for banded matrices (finite-difference stencils), numba.

A CSR matrix whose entries lie on a few diagonals (a 5-point stencil on an
s × s grid has offsets 0, ±1, ±s) is stored here by diagonal, *row-aligned*:
``val[d, i] = A[i, i + off[d]]`` (zero where the diagonal leaves the matrix
or the stencil has no entry).  The product then needs no column indices
(8 instead of 12 bytes per entry in double precision) and its inner loop runs
over consecutive rows, which LLVM vectorises without gathers.  Measured here
on the 300² convection–diffusion matrix: 130 µs against 270 µs for the
threaded CSR kernel.

Each output row sums its diagonals in increasing offset order, which is the
column order of a sorted CSR row, starting from zero as `spmv_serial` does:
for sorted CSR input without duplicates the result is bitwise the CSR
kernel's, so a solver gives the same iterates on either path.

`dia_from_csr` converts when the structure pays: at most ``max_diagonals``
distinct offsets and at most 50 % padding (stored zeros); otherwise it
returns an empty offset array and the caller keeps CSR.

A constant-coefficient stencil (Poisson, convection–diffusion on a uniform
grid) has one value per diagonal, apart from zeros where the stencil meets
the boundary.  `stencil_values` then replaces ``val`` by ``(consts, full,
mask)``: the value of each diagonal, whether it has no zeros inside the
matrix, and a byte per entry saying where the others do.  Every kernel here
takes either form for ``val`` (the form is chosen when numba compiles the
caller, by its type) and gives bitwise the same product; the constant form
reads a byte per entry of the diagonals that need a mask and nothing for the
others, instead of 8 bytes per entry (300² convection–diffusion, threaded,
caches flushed: 224 → 161 µs per product).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.core import types
from numba.extending import overload

_jit = dict(nogil=True, cache=True, fastmath=False)

#: rows per block of the threaded product (one block's output stays in L1 across the diagonals)
_BLOCK = 2048

#: solvers convert CSR to diagonal storage from this many rows on (below, the conversion is not repaid)
MIN_ROWS = 10_000


@nb.njit(**_jit)
def _offsets(indptr, indices, max_diagonals):
    """The distinct offsets j − i of the stored entries, ascending; empty if there are more than ``max_diagonals``."""
    n = indptr.shape[0] - 1
    found = np.empty(max_diagonals, dtype=np.int64)
    nd = 0
    last = np.int64(0)
    for i in range(n):
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            o = np.int64(indices[k]) - i
            if nd > 0 and o == last:
                continue
            seen = False
            for t in range(nd):
                if found[t] == o:
                    seen = True
                    break
            if not seen:
                if nd == max_diagonals:
                    return found[:0]
                found[nd] = o
                nd += 1
            last = o
    return np.sort(found[:nd])


@nb.njit(**_jit)
def _fill(indptr, indices, data, offs, val):
    n = indptr.shape[0] - 1
    nd = offs.shape[0]
    for i in range(n):
        t = 0
        for k in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            o = np.int64(indices[k]) - i
            if offs[t] != o:  # rows are usually sorted: the next offset is at or after the last one
                t = 0
                while offs[t] != o:
                    t += 1
            val[t, i] += data[k]


def dia_from_csr(indptr, indices, data, max_diagonals: int = 32, max_padding: float = 0.5):
    """``(offsets, val)`` for the row-aligned diagonal storage of a square CSR matrix.

    ``offsets`` is empty (and ``val`` has no rows) when the matrix has more than
    ``max_diagonals`` distinct diagonals, or when the diagonals would store
    more than ``max_padding`` times as many zeros as there are entries.
    Duplicate CSR entries are summed.
    """
    n = indptr.shape[0] - 1
    nnz = int(indptr[-1])
    offs = _offsets(indptr, indices, int(max_diagonals))
    if offs.shape[0] == 0 or offs.shape[0] * n > (1.0 + max_padding) * max(nnz, 1):
        return np.zeros(0, dtype=np.int64), np.zeros((0, n), dtype=data.dtype)
    val = np.zeros((offs.shape[0], n), dtype=data.dtype)
    _fill(indptr, indices, data, offs, val)
    return offs, val


def stencil_values(offs, val):
    """``(consts, full, mask)`` when every diagonal of ``(offs, val)`` holds one value apart from zeros, else None.

    ``consts[d]`` is diagonal d's value, ``full[d]`` is 1 when it has no zero
    inside the matrix (then its row of ``mask`` is not read), and
    ``mask[d, i]`` is 1 where A[i, i + offs[d]] is stored.  Kernels given the
    tuple instead of ``val`` compute bitwise the same products.
    """
    nd, n = val.shape
    if nd == 0:
        return None
    consts = np.zeros(nd, dtype=val.dtype)
    full = np.zeros(nd, dtype=np.uint8)
    mask = np.zeros((nd, n), dtype=np.uint8)
    for t in range(nd):
        row = val[t]
        nz = row != 0
        if not nz.any():
            continue
        c = row[int(np.argmax(nz))]
        if not np.all(row[nz] == c):  # (a NaN is never equal: such a matrix keeps its values)
            return None
        consts[t] = c
        mask[t] = nz
        lo, hi = max(0, -int(offs[t])), min(n, n - int(offs[t]))
        full[t] = bool(nz[lo:hi].all())
    return consts, full, mask


@nb.njit(**_jit)
def dia_positions(indptr, indices, offs):
    """``pos[d, i]``: the index in ``data`` of the entry A[i, i + offs[d]] of a CSR matrix without duplicate
    entries, or −1 where the diagonal has none.  With it, a new matrix of the same pattern goes to diagonal
    storage by `dia_gather` (contiguous writes, no offset search)."""
    n = indptr.shape[0] - 1
    nd = offs.shape[0]
    pos = np.full((nd, n), -1, dtype=np.int64)
    for i in range(n):
        t = 0
        for k in range(np.int64(indptr[i]), np.int64(indptr[i + 1])):
            o = np.int64(indices[k]) - i
            while t < nd and offs[t] < o:
                t += 1
            if t == nd or offs[t] != o:  # an unsorted row: search from the start
                t = 0
                while offs[t] != o:
                    t += 1
            pos[t, i] = k
    return pos


@nb.njit(**_jit)
def dia_gather(data, pos, val):
    """``val[d, i] ← data[pos[d, i]]`` (0 where ``pos`` is −1): the diagonals of a matrix with the pattern
    `dia_positions` was computed for."""
    for t in range(pos.shape[0]):
        pt = pos[t]
        vt = val[t]
        for i in range(pt.shape[0]):
            k = pt[i]
            vt[i] = data[k] if k >= 0 else 0
    return val


class DiagonalCopy:
    """A banded CSR matrix kept in diagonal storage across a sequence of matrices sharing its pattern.

    ``update(A)`` returns ``(offsets, val)`` for A: for the pattern seen last it only gathers the new
    values (`dia_gather`, through positions computed once by `dia_positions`; 0.3 ms against 2 ms
    for a conversion at 3D 32³), otherwise it converts anew.  Below ``min_rows`` rows, for CSR with
    duplicates or unsorted rows, or for an unbanded matrix the offsets are empty (the caller keeps CSR).
    ``dtype`` is the precision of the stored values (default: the matrix's).
    """

    def __init__(self, dtype=None, min_rows: int = MIN_ROWS):
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.min_rows = int(min_rows)
        self._indptr = self._indices = self._pos = None
        self.offsets = np.zeros(0, dtype=np.int64)
        self.val = np.zeros((0, 0))

    def update(self, a, same_pattern: bool = False):
        """Diagonal storage of CSR ``a``; ``same_pattern=True`` (the caller checked) skips the pattern test."""
        dtype = a.dtype if self.dtype is None else self.dtype
        n = a.shape[0]
        known = self._indptr is not None and self.val.dtype == dtype and (same_pattern or (
            np.array_equal(self._indptr, a.indptr) and np.array_equal(self._indices, a.indices)))
        # canonical (sorted, no duplicates) is a property of the pattern: a known pattern was checked when
        # it was converted (scipy's check costs about a gather, 0.18 ms at 3D 32³)
        if n < self.min_rows or not (known or a.has_canonical_format):
            self._indptr = self._indices = self._pos = None
            self.offsets, self.val = np.zeros(0, dtype=np.int64), np.zeros((0, n), dtype=dtype)
        elif known:
            if self._pos is not None:  # (a pattern found unbanded stays so: nothing to redo)
                dia_gather(a.data, self._pos, self.val)
        else:
            self.offsets, self.val = dia_from_csr(a.indptr, a.indices, a.data.astype(dtype, copy=False))
            self._pos = dia_positions(a.indptr, a.indices, self.offsets) if self.offsets.shape[0] else None
            self._indptr, self._indices = a.indptr.copy(), a.indices.copy()
        return self.offsets, self.val


def dia_for_solver(indptr, indices, data, min_rows: int = MIN_ROWS, constant: bool = True):
    """`dia_from_csr` for a solve from ``min_rows`` rows on; below that (the conversion, about one
    product, would not be repaid) or for an unbanded matrix, empty offsets: the caller keeps CSR.
    With ``constant``, a constant-coefficient stencil comes back in the form of `stencil_values`
    (``val`` is then a tuple; every kernel here accepts both)."""
    n = indptr.shape[0] - 1
    if n < min_rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, n), dtype=data.dtype)
    offs, val = dia_from_csr(indptr, indices, data)
    stencil = stencil_values(offs, val) if constant else None
    return (offs, val) if stencil is None else (offs, stencil)


def storage_name(offs, val) -> str:
    """What `dia_for_solver` returned: ``"csr"``, ``"diagonals"`` or ``"constant diagonals"``."""
    if offs.shape[0] == 0:
        return "csr"
    return "constant diagonals" if isinstance(val, tuple) else "diagonals"


@nb.njit(**_jit)
def _rows(offs, val, x, y, lo, hi):
    """y[lo:hi] ← (A x)[lo:hi] (n = len(y); x may be longer, e.g. a padded basis row), for ``val`` in either
    form (values, or the constant form of `stencil_values`).

    A plain call (one per block of `_BLOCK` rows), not ``inline="always"``: numba's IR-level
    inlining gave the complex128 product different last bits depending on which caller was
    compiled first (the GMRES and CG kernels inline it too), which broke the bitwise equality
    with the CSR kernel in some test orders.  As one compiled function it is the same everywhere.
    """
    n = y.shape[0]
    for i in range(np.uint64(lo), np.uint64(hi)):
        y[i] = 0
    for t in range(offs.shape[0]):
        o = offs[t]
        a = max(lo, -o)
        b = min(hi, n - o)
        if a < b:
            _add_diagonal(val, t, x, y, o, a, b)


@nb.njit(**_jit)
def _add_values(vt, x, y, o, a, b):
    """y[i] += vt[i]·x[i + o] for a ≤ i < b."""
    for i in range(np.uint64(a), np.uint64(b)):
        y[i] += vt[i] * x[np.uint64(np.int64(i) + o)]


@nb.njit(**_jit)
def _add_constant(c, zero, full, mt, x, y, o, a, b):
    """`_add_values` for a diagonal of value c: every entry (``full``) or those the mask ``mt`` marks
    (c or ``zero``, 0 of c's type, selected per entry, so the sums are bitwise those of the values)."""
    if full:
        for i in range(np.uint64(a), np.uint64(b)):
            y[i] += c * x[np.uint64(np.int64(i) + o)]
    else:
        for i in range(np.uint64(a), np.uint64(b)):
            v = c if mt[i] != 0 else zero
            y[i] += v * x[np.uint64(np.int64(i) + o)]


def _add_diagonal(val, t, x, y, o, a, b):
    """Diagonal t's terms for rows a ≤ i < b, from ``val`` in either form; jitted code only (the form is
    picked when numba compiles the caller, by the argument's type)."""
    raise TypeError("_add_diagonal is called from numba-compiled code only")


@overload(_add_diagonal, jit_options=_jit)
def _add_diagonal_impl(val, t, x, y, o, a, b):
    if isinstance(val, types.BaseTuple):
        return lambda val, t, x, y, o, a, b: _add_constant(val[0][t], val[0].dtype.type(0), val[1][t] != 0, val[2][t],
                                                           x, y, o, a, b)
    return lambda val, t, x, y, o, a, b: _add_values(val[t], x, y, o, a, b)


@nb.njit(**_jit)
def dia_spmv_serial(offs, val, x, y):
    """y ← A x, A in row-aligned diagonal storage."""
    n = y.shape[0]
    for lo in range(0, n, _BLOCK):
        _rows(offs, val, x, y, lo, min(lo + _BLOCK, n))


@nb.njit(parallel=True, **_jit)
def dia_spmv_parallel(offs, val, x, y):
    """y ← A x, A in row-aligned diagonal storage; row blocks split over threads."""
    n = y.shape[0]
    nblk = (n + _BLOCK - 1) // _BLOCK
    for blk in nb.prange(nblk):
        lo = blk * _BLOCK
        _rows(offs, val, x, y, lo, min(lo + _BLOCK, n))


@nb.njit(**_jit)
def dia_spmv_dot_serial(offs, val, x, y):
    """y ← A x and return xᴴ y (A in row-aligned diagonal storage).  The dot is summed block by block
    (`_BLOCK` rows), in the threaded kernel's order; the two agree to rounding (the parallel loop is
    compiled separately, and complex sums were seen to differ in the last bit)."""
    n = y.shape[0]
    s = y.dtype.type(0)
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        _rows(offs, val, x, y, lo, hi)
        t = y.dtype.type(0)
        for i in range(np.uint64(lo), np.uint64(hi)):
            t += np.conj(x[i]) * y[i]
        s += t
    return s


@nb.njit(parallel=True, **_jit)
def dia_spmv_dot_parallel(offs, val, x, y):
    """Threaded `dia_spmv_dot_serial`: row blocks over threads, block sums added in block order."""
    n = y.shape[0]
    nblk = (n + _BLOCK - 1) // _BLOCK
    part = np.zeros(nblk, dtype=y.dtype)
    for blk in nb.prange(nblk):
        lo = blk * _BLOCK
        hi = min(lo + _BLOCK, n)
        _rows(offs, val, x, y, lo, hi)
        t = y.dtype.type(0)
        for i in range(np.uint64(lo), np.uint64(hi)):
            t += np.conj(x[i]) * y[i]
        part[blk] = t
    s = y.dtype.type(0)
    for blk in range(nblk):
        s += part[blk]
    return s
