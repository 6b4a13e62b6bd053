"""Named test and benchmark matrices, shared by tests, docs and benchmarks.

All builders return scipy CSR matrices (``scipy.sparse.csr_matrix``) with
sorted indices and int32 index arrays.
"""

from ._grids import convection_diffusion, poisson

__all__ = ["poisson", "convection_diffusion"]
