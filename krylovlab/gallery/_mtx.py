"""Matrix Market files: `load_mtx` and `save_mtx`.

Reading goes through `scipy.io.mmread`, which parses text only (no code is
ever executed).  Anything that is not a valid Matrix Market matrix raises a
`ValueError` naming the file; writing is atomic (temporary file, then rename).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import scipy.io
import scipy.sparse as sp

__all__ = ["load_mtx", "save_mtx"]


#: default cap on the entries a file may declare (about 16 GB of float64 values and indices)
MAX_ENTRIES = 10**9


def _check_header(path: str, compressed: bool, max_entries: int) -> None:
    """Refuse files whose header declares more data than is plausible, before allocating it."""
    try:
        rows, cols, entries, fmt, field, symmetry = scipy.io.mminfo(path)
    except Exception as exc:
        raise ValueError(f"{path} is not a valid Matrix Market matrix (bad header): {exc}") from None
    if min(rows, cols, entries) < 0:
        raise ValueError(f"{path}: negative size in the header ({rows} x {cols}, {entries} entries)")
    if entries > max_entries:
        raise ValueError(f"{path} declares {entries:,} entries ({rows:,} x {cols:,}, {fmt}), more than "
                         f"max_entries={max_entries:,}; pass a larger max_entries if this is intended")
    if fmt == "coordinate" and entries > rows * cols:
        raise ValueError(f"{path} declares {entries:,} entries for a {rows} x {cols} matrix")
    if not compressed:
        # every entry needs at least two characters (a digit and a separator)
        size = os.path.getsize(path)
        if entries > size // 2:
            raise ValueError(f"{path} declares {entries:,} entries but is only {size:,} bytes long (truncated?)")


def load_mtx(path, *, max_entries: int = MAX_ENTRIES) -> sp.csr_matrix:
    """Read a sparse or dense Matrix Market file (``.mtx``, ``.mtx.gz``, ``.mtx.bz2``) as CSR.

    Parameters
    ----------
    path : str or os.PathLike
    max_entries : int
        Refuse files whose header declares more entries than this (checked
        before anything is allocated, so a hostile header cannot exhaust
        memory).

    Returns
    -------
    scipy.sparse.csr_matrix
        Sorted indices, duplicates summed; integer and pattern matrices become
        float64, complex stays complex.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not a well-formed Matrix Market matrix, or holds NaN/Inf.

    Examples
    --------
    >>> import os, tempfile
    >>> from krylovlab.gallery import poisson, save_mtx, load_mtx
    >>> path = os.path.join(tempfile.mkdtemp(), "p.mtx")
    >>> save_mtx(path, poisson((4, 4)))
    >>> (load_mtx(path) != poisson((4, 4))).nnz
    0
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Matrix Market file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a Matrix Market file")
    with open(path, "rb") as fh:
        head = fh.read(2)
    compressed = head in (b"\x1f\x8b", b"BZ")
    if not compressed:
        with open(path, "rb") as fh:
            first = fh.readline(200)
        if not first.lower().startswith(b"%%matrixmarket"):
            raise ValueError(f"{path} is not a Matrix Market file: its first line must start with "
                             f"'%%MatrixMarket', found {first[:60]!r}")
    _check_header(path, compressed, max_entries)
    try:
        m = scipy.io.mmread(path)
    except Exception as exc:  # the parser raises ValueError, OSError, RuntimeError ... on bad input
        raise ValueError(f"{path} is not a valid Matrix Market matrix: {exc}") from None
    if not (sp.issparse(m) or isinstance(m, np.ndarray)) or np.ndim(m) != 2:
        raise ValueError(f"{path} did not contain a 2-D matrix")
    a = sp.csr_matrix(m)
    if a.dtype.kind not in "fc":
        a = a.astype(np.float64)
    if a.nnz and not np.isfinite(a.data).all():
        raise ValueError(f"{path} contains NaN or Inf entries")
    a.sum_duplicates()
    a.sort_indices()
    return a


def save_mtx(path, A, *, comment: str = "", precision: int | None = None) -> None:
    """Write a matrix (sparse or dense) to a Matrix Market file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; written as-is (no extension is added).
    A : sparse matrix or 2-D array
    comment : str
        Written into the file header.
    precision : int, optional
        Significant digits (default: enough for a lossless round trip).
    """
    path = os.fspath(path)
    a = sp.coo_matrix(A) if not sp.issparse(A) else A.tocoo()
    if a.ndim != 2:
        raise ValueError("save_mtx: A must be 2-D")
    if precision is None:
        precision = 17 if a.dtype.itemsize >= 8 and a.dtype.kind == "f" or a.dtype == np.complex128 else 9
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".mtx", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            scipy.io.mmwrite(fh, a, comment=comment, precision=precision, symmetry="general")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
