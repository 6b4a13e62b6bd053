"""The interface every PDE family implements."""

from __future__ import annotations

import abc

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp


def normalise_grid(grid, dim: int | None) -> tuple[int, ...]:
    """``64`` with ``dim=2`` → ``(64, 64)``; a tuple passes through after checks."""
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        d = 2 if dim is None else int(dim)
        if d not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim!r}")
        shape = (int(grid),) * d
    else:
        if isinstance(grid, (str, bytes)):
            raise ValueError(f"grid must be an int or a tuple of ints, got {grid!r}")
        try:
            shape = tuple(int(g) for g in grid)
        except (TypeError, ValueError):
            raise ValueError(f"grid must be an int or a tuple of ints, got {grid!r}") from None
        if dim is not None and len(shape) != dim:
            raise ValueError(f"grid {shape} does not have dim={dim} sizes")
    if len(shape) not in (2, 3):
        raise ValueError(f"grid must be 2-D or 3-D, got {shape}")
    if min(shape) < 4:
        raise ValueError(f"grid needs at least 4 interior points per axis, got {shape}")
    if int(np.prod(shape)) > 50_000_000:
        raise ValueError(f"grid {shape} is too large")
    return shape


class ProblemFamily(abc.ABC):
    """A parameterised family of linear systems A(p) x = b(p) from one PDE.

    Subclasses implement ``sample(rng) -> params`` (a dict of numpy arrays
    and floats, everything needed to rebuild the system), ``assemble(params)
    -> (A, b)`` (scipy CSR and a vector), and ``features(params)`` (a short
    float vector: samples with close features have similar systems, which is
    what sorting for Krylov recycling needs).

    Attributes
    ----------
    name : str
    grid : tuple of int -- interior points per axis
    symmetric, definite : bool -- properties of every A in the family
    """

    name: ClassVar[str] = ""
    symmetric: ClassVar[bool] = True
    definite: ClassVar[bool] = True
    #: does A change between samples (False: only b changes)?
    matrix_varies: ClassVar[bool] = True

    def __init__(self, grid=64, *, dim: int | None = None):
        self.grid = normalise_grid(grid, dim)

    @property
    def dim(self) -> int:
        return len(self.grid)

    @property
    def n(self) -> int:
        return int(np.prod(self.grid))

    def node_shape(self) -> tuple[int, ...]:
        return tuple(g + 2 for g in self.grid)

    @abc.abstractmethod
    def sample(self, rng) -> dict[str, Any]:
        """Draw the parameters of one sample."""

    @abc.abstractmethod
    def assemble(self, params) -> tuple[sp.csr_matrix, np.ndarray]:
        """Build (A, b) for ``params``."""

    @abc.abstractmethod
    def features(self, params) -> np.ndarray:
        """A short feature vector for ordering samples."""

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description (stored with datasets)."""
        return {"family": self.name, "grid": list(self.grid)}

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k not in ("family",))
        return f"{type(self).__name__}({opts})"
