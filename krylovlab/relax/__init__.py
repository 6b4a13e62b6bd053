"""Relaxation: SOR/SSOR with a fixed or learned relaxation factor ω.

`SOR` is a stationary solver, `SSOR` a preconditioner for CG and friends;
both can learn ω across a sequence of systems with the bandits in
`krylovlab.relax.bandit` (Khodak et al., "Learning to Relax", ICLR 2024).
"""

from .bandit import DEFAULT_ARMS, BinnedTsallisINF, ChebCB, OmegaLearner, TsallisINF
from .coloring import Coloring, multicolor_ordering
from .sor import SOR, SSOR, check_omega, young_omega

__all__ = ["SOR", "SSOR", "young_omega", "check_omega", "TsallisINF", "BinnedTsallisINF", "ChebCB",
           "OmegaLearner", "DEFAULT_ARMS", "Coloring", "multicolor_ordering"]
