"""Where a solve runs: ``get_backend(*arrays)`` returns the array namespace and
the kernel module matching the inputs (numpy + numba, or CuPy + CuPy kernels).

It never copies between host and device: mixing host and device inputs raises.
CuPy is imported only when a device array is seen.
"""

from __future__ import annotations

import dataclasses
import types

import numpy as np

from .._operator import Operator, Preconditioner, is_device_array

__all__ = ["Backend", "get_backend", "cupy_available"]


@dataclasses.dataclass(frozen=True)
class Backend:
    """An array namespace and its kernels.

    Attributes
    ----------
    name : ``"numpy"`` or ``"cupy"``
    xp : the array module
    kernels : module exporting the kernel contract (`krylovlab.kernels.cpu` or ``.gpu``)
    """

    name: str
    xp: types.ModuleType
    kernels: types.ModuleType

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    def to_host(self, a):
        return a.get() if self.is_gpu else a


def _on_device(a) -> bool | None:
    """True/False for arrays on device/host; None for things without a location."""
    if a is None or isinstance(a, (int, float, complex, str)):
        return None
    if isinstance(a, Operator):
        return a.device if a.kind != "linop" else None
    if isinstance(a, Preconditioner):
        return None
    if is_device_array(a):
        return True
    if isinstance(a, np.ndarray) or hasattr(a, "tocsr") or hasattr(a, "toarray"):
        return False
    return None


def get_backend(*arrays) -> Backend:
    """Choose the backend from where the inputs live.

    Raises
    ------
    ValueError
        When some inputs are on the GPU and others on the host.
    """
    places = {p for p in (_on_device(a) for a in arrays) if p is not None}
    if places == {True, False}:
        raise ValueError(
            "inputs mix host (numpy/scipy) and device (CuPy) arrays; move them to one place "
            "first (krylovlab never copies between host and device silently)"
        )
    if True in places:
        import cupy

        from ..kernels import gpu

        return Backend("cupy", cupy, gpu)
    from ..kernels import cpu

    return Backend("numpy", np, cpu)


def cupy_available() -> bool:
    """True when CuPy imports and sees a usable device."""
    try:
        import cupy
    except Exception:
        return False
    try:
        return bool(cupy.is_available())
    except Exception:
        return False
