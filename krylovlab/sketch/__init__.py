"""Randomized sketching: sketch operators, sketch-and-precondition least squares,
sketch-and-project solvers.

* `sketches` — `GaussianSketch`, `SRHT`, `CountSketch`, `SparseSign`, `make_sketch`.
* `lstsq` — `lstsq(A, b, ...)` for tall dense or sparse A, returning `LstsqResult`.
* `project` — `Kaczmarz` and `SketchProject` solvers (``solve(..., method="kaczmarz" |
  "sketch-project")``) with a user stopping rule for inexact outer methods.
"""

from .sketches import SKETCHES, SRHT, CountSketch, GaussianSketch, SketchOperator, SparseSign, make_sketch
from .lstsq import LstsqResult, linf_sketch_size, lstsq
from .project import Kaczmarz, SketchProject

__all__ = [
    "SKETCHES",
    "SketchOperator",
    "GaussianSketch",
    "SRHT",
    "CountSketch",
    "SparseSign",
    "make_sketch",
    "lstsq",
    "LstsqResult",
    "linf_sketch_size",
    "Kaczmarz",
    "SketchProject",
]
