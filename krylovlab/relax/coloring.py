"""Greedy multicolour ordering of a sparsity pattern, for parallel SOR sweeps.

Rows i and j are *adjacent* when a_ij ≠ 0 or a_ji ≠ 0 (the pattern of
A + Aᵀ, so non-symmetric patterns are handled).  Rows are coloured first-fit
in natural order: row i gets the smallest colour none of its already coloured
neighbours has.  Rows of one colour share no matrix entry, so an SOR update
of all of them at once equals updating them one by one; a multicolour sweep
visits colour 0, 1, …, m−1 (each colour's rows by all threads together) and
a symmetric sweep then visits m−1, …, 0.  For a 5-point Laplacian this is
red–black ordering (m = 2); SOR in any such consistently ordered sequence
has the same asymptotic rate as in natural order (Young's theory), but the
iterates, and so the iteration counts, differ from natural ordering.

The colouring depends only on the pattern, so it is computed once per
pattern and reused when only the values change.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from ..kernels.cpu._relax import greedy_coloring

__all__ = ["Coloring", "multicolor_ordering"]


@dataclasses.dataclass(frozen=True)
class Coloring:
    """A multicolour ordering.

    Attributes
    ----------
    colors : int32 array (n,)
        Colour of each row.
    order : int64 array (n,)
        Rows sorted by colour (ascending row index within a colour).
    color_ptr : int64 array (m + 1,)
        Rows of colour c are ``order[color_ptr[c]:color_ptr[c + 1]]``.
    """

    colors: np.ndarray
    order: np.ndarray
    color_ptr: np.ndarray

    @property
    def ncolors(self) -> int:
        return self.color_ptr.size - 1


def multicolor_ordering(A) -> Coloring:
    """Greedy colouring of the pattern of ``A + Aᵀ``.

    Examples
    --------
    >>> from krylovlab.gallery import poisson
    >>> from krylovlab.relax.coloring import multicolor_ordering
    >>> multicolor_ordering(poisson((4, 4))).ncolors   # red-black
    2
    """
    A = sp.csr_matrix(A)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"multicolor_ordering needs a square matrix, got shape {A.shape}")
    pattern = sp.csr_matrix((np.ones(A.nnz, dtype=np.int8), A.indices, A.indptr), shape=A.shape)
    sym = (pattern + pattern.T).tocsr()
    sym.sort_indices()
    colors = greedy_coloring(sym.indptr.astype(np.int64), sym.indices.astype(np.int64))
    order = np.argsort(colors, kind="stable").astype(np.int64)
    counts = np.bincount(colors, minlength=int(colors.max()) + 1 if colors.size else 0)
    color_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Coloring(colors, order, color_ptr)
