"""Algebraic multigrid: AMG preconditioning on krylovlab's kernels, bootstrap
AMG smooth vectors, and AMG spectral clustering of (attributed) graphs."""

from .cluster import AMGSpectralClustering, modularity, spectral_clustering
from .precond import AMG, AMGCG, AMGGMRES
from .smooth import bootstrap_smooth_vectors, matching_hierarchy

__all__ = [
    "AMG",
    "AMGCG",
    "AMGGMRES",
    "bootstrap_smooth_vectors",
    "matching_hierarchy",
    "spectral_clustering",
    "AMGSpectralClustering",
    "modularity",
]
