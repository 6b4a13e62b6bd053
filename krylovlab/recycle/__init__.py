"""Recycled Krylov methods for sequences of linear systems.

* `GCRODR` / `gcrodr` — GCRO with deflated restarting (Parks et al. 2006),
  keeping a recycle space across solves; `GMRESDR` — the same iteration
  with nothing carried over (GMRES with deflated restarting).
* `RCG` — deflated (recycled) conjugate gradients for SPD sequences.
* `ordering` — orderings of a batch of systems so that neighbours are
  similar (greedy nearest-neighbour tour, and a scalable space-filling-curve
  order).
"""

from . import ordering
from .gcrodr import GCRODR, GMRESDR, gcrodr
from .rcg import RCG

__all__ = ["GCRODR", "GMRESDR", "RCG", "gcrodr", "ordering"]
