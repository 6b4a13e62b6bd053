"""CPU kernels (numba, ``cache=True``) on raw CSR arrays and vectors.

The names and signatures match `krylovlab.kernels.gpu`.  Each public kernel
chooses its serial or threaded variant by problem size; the variants are
reachable as ``kernel.serial`` and ``kernel.parallel``.
"""

from ._cg import cg_csr
from ._relax import sor_sweep
from ._blas import (
    PARALLEL_THRESHOLD,
    axpby,
    cg_update,
    dot,
    jacobi,
    norm2,
    spmv,
    spmv_dot,
)

__all__ = [
    "PARALLEL_THRESHOLD",
    "axpby",
    "cg_update",
    "cg_csr",
    "dot",
    "jacobi",
    "norm2",
    "spmv",
    "spmv_dot",
    "sor_sweep",
]
