"""Named test and benchmark matrices, shared by tests, docs and benchmarks.

Sparse builders return scipy CSR matrices (``scipy.sparse.csr_matrix``) with
sorted indices and int32 index arrays; `random_spd` without ``density``
returns a dense numpy array.
"""

from ._grids import convection_diffusion, poisson
from ._more import anisotropic_diffusion, complex_hermitian, indefinite_symmetric, random_spd
from ._mtx import load_mtx, save_mtx

__all__ = [
    "poisson",
    "convection_diffusion",
    "anisotropic_diffusion",
    "random_spd",
    "indefinite_symmetric",
    "complex_hermitian",
    "load_mtx",
    "save_mtx",
]
