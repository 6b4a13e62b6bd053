"""Neural-operator training data: sample → order → solve with carried state → store.

``generate(family, n_samples, out, ...)`` draws samples of a PDE family
(`krylovlab.problems`), orders them so that neighbours are similar (Sorting
Krylov Recycling), solves them in that order with a strategy that carries
what it learns from one system to the next (warm starts, recycle spaces, AMG
hierarchies — or a sparse LU where that is fastest; ``solver="auto"`` decides
by timing the candidates on the first samples), checks every true residual,
and writes an HDF5 or ``.npz`` dataset.  Work is split into shards written
atomically, so a rerun after a crash resumes; shards can run on a Dask
cluster.  ``load(path)`` reads a dataset back as numpy arrays.
"""

from .pipeline import Summary, generate, sample_rng
from .storage import load

__all__ = ["generate", "load", "Summary", "sample_rng"]
