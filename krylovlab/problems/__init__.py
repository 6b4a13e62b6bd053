"""Parameterised PDE families producing sequences of linear systems.

Each family has ``sample(rng) -> params``, ``assemble(params) -> (A, b)``
(scipy CSR), ``features(params)`` (for ordering samples) and a docstring
describing its discretisation.  `get_family(name, **options)` builds one by
name; `FAMILIES` lists them.
"""

from ._base import ProblemFamily
from ._grf import gaussian_random_field
from .convdiff import ConvectionDiffusion
from .darcy import Darcy
from .heat import Heat
from .helmholtz import Helmholtz
from .poisson import Poisson

FAMILIES = {cls.name: cls for cls in (Darcy, Poisson, Heat, ConvectionDiffusion, Helmholtz)}


def get_family(name: str, **options) -> ProblemFamily:
    """Build the family registered as ``name`` (see `FAMILIES`)."""
    try:
        cls = FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown problem family {name!r}; choose from {', '.join(FAMILIES)}") from None
    return cls(**options)


__all__ = ["FAMILIES", "get_family", "ProblemFamily", "Darcy", "Poisson", "Heat", "ConvectionDiffusion",
           "Helmholtz", "gaussian_random_field"]
