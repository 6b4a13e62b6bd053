"""Loading ``csr_kernels.cu`` into CuPy and naming its template instances.

The CUDA source lives in a real file so that a test can compile it with
``nvcc`` on machines without a GPU.  `name_expressions()` lists every template
instance the Python side launches; CuPy's `cupy.RawModule` compiles them with
NVRTC on first use (once per process, then from CuPy's kernel cache).
"""

from __future__ import annotations

import functools
import importlib.resources

import numpy as np

SOURCE_FILE = "csr_kernels.cu"
BLOCK = 256  # must equal KL_BLOCK in the .cu file
# The source is plain C++11; no -std flag, so CuPy's own NVRTC defaults apply unchanged.
NVRTC_OPTIONS: tuple[str, ...] = ()

#: numpy dtype → C++ type in the .cu file
CTYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.complex64): "kl_complex<float>",
    np.dtype(np.complex128): "kl_complex<double>",
}
ITYPES = {np.dtype(np.int32): "int", np.dtype(np.int64): "long long"}
REAL_OF = {
    np.dtype(np.float32): np.dtype(np.float32),
    np.dtype(np.float64): np.dtype(np.float64),
    np.dtype(np.complex64): np.dtype(np.float32),
    np.dtype(np.complex128): np.dtype(np.float64),
}


def source() -> str:
    """The CUDA C++ source text."""
    return importlib.resources.files(__package__).joinpath(SOURCE_FILE).read_text(encoding="utf-8")


def source_path() -> str:
    return str(importlib.resources.files(__package__).joinpath(SOURCE_FILE))


def spmv_name(kind: str, dtype, itype) -> str:
    """``kind`` in spmv_row, spmv_warp, spmv_dot_row, spmv_dot_warp."""
    return f"kl_{kind}<{CTYPES[np.dtype(dtype)]}, {ITYPES[np.dtype(itype)]}>"


def cg_update_name(dtype) -> str:
    return f"kl_cg_update<{CTYPES[np.dtype(dtype)]}>"


def jacobi_name(diag_dtype, dtype) -> str:
    return f"kl_jacobi<{CTYPES[np.dtype(diag_dtype)]}, {CTYPES[np.dtype(dtype)]}>"


def name_expressions() -> list[str]:
    """Every template instance used from Python."""
    names = []
    for dt in CTYPES:
        for it in ITYPES:
            names += [spmv_name(k, dt, it) for k in ("spmv_row", "spmv_warp", "spmv_dot_row", "spmv_dot_warp")]
        names.append(cg_update_name(dt))
        names.append(jacobi_name(REAL_OF[dt], dt))
        if REAL_OF[dt] != dt:
            names.append(jacobi_name(dt, dt))  # complex D⁻¹ (what a complex Jacobi object stores)
    return names


@functools.lru_cache(maxsize=None)
def module():
    """The compiled `cupy.RawModule` (needs a CUDA device)."""
    import cupy

    return cupy.RawModule(code=source(), options=NVRTC_OPTIONS, name_expressions=name_expressions())


def function(name: str):
    return module().get_function(name)
