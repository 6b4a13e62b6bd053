"""CPU kernels (numba, ``cache=True``) on raw CSR arrays and vectors.

The names and signatures match `krylovlab.kernels.gpu`.  Each public kernel
chooses its serial or threaded variant by problem size; the variants are
reachable as ``kernel.serial`` and ``kernel.parallel``.
"""

from ._cg import cg_csr
from ._relax import sor_sweep
from ._blas import (
    PARALLEL_THRESHOLD,
    by_size,
    machine_busy,
    use_parallel,
    all_finite,
    axpby,
    cg_update,
    dot,
    jacobi,
    norm2,
    spmv,
    spmv_dot,
    spmv_rows_parallel,
    spmv_rows_serial,
)

__all__ = [
    "PARALLEL_THRESHOLD",
    "by_size",
    "machine_busy",
    "use_parallel",
    "all_finite",
    "axpby",
    "cg_update",
    "cg_csr",
    "dot",
    "jacobi",
    "norm2",
    "spmv",
    "spmv_dot",
    "spmv_rows_serial",
    "spmv_rows_parallel",
    "sor_sweep",
]

# DCDM network inference (learned/): 3×3 convolutions, pooling, upsampling
from ._conv import (  # noqa: E402
    avgpool2_2d,
    avgpool2_3d,
    conv3x3_2d,
    conv3x3_3d,
    load_input_2d,
    load_input_3d,
    mix_out_2d,
    mix_out_3d,
    upsample2_add_2d,
    upsample2_add_3d,
)

__all__ += [
    "conv3x3_2d", "conv3x3_3d", "avgpool2_2d", "avgpool2_3d", "upsample2_add_2d", "upsample2_add_3d",
    "mix_out_2d", "mix_out_3d", "load_input_2d", "load_input_3d",
]

# sketching and row-action kernels (sketch/)
from ._sketch import (  # noqa: E402
    coordinate_csr,
    coordinate_dense,
    fwht_rows,
    gather_rows_dense,
    kaczmarz_csr,
    kaczmarz_dense,
    normal_csr,
    normal_dense,
    sparse_sign_csr,
    sparse_sign_dense,
)

__all__ += ["coordinate_csr", "coordinate_dense", "fwht_rows", "gather_rows_dense", "kaczmarz_csr", "kaczmarz_dense",
            "normal_csr", "normal_dense", "sparse_sign_csr", "sparse_sign_dense"]

# recycled Krylov kernels (recycle/)
from ._recycle import (  # noqa: E402
    WINDOW_FULL,
    apply_op_rows,
    arnoldi_finish_step,
    arnoldi_rotate,
    combine,
    defcg_csr,
    gcro_cycle_csr,
    gram,
    orth_cgs2,
)

__all__ += [
    "WINDOW_FULL",
    "apply_op_rows",
    "arnoldi_finish_step",
    "arnoldi_rotate",
    "combine",
    "defcg_csr",
    "gcro_cycle_csr",
    "gram",
    "orth_cgs2",
]

# algebraic multigrid kernels (amg/)
from ._amg import amg_pcg, compatible_matching, split_diagonal, vcycle  # noqa: E402

__all__ += ["amg_pcg", "compatible_matching", "split_diagonal", "vcycle"]

# GMRES kernels (krylov/gmres.py): fused MGS, solution update, small dense work, the whole solve
from ._gmres import (  # noqa: E402
    givens,
    gmres_csr,
    gs_combine,
    hessenberg_solve,
    mgs_blocks_for,
    mgs_twice_if_tiny,
)

__all__ += ["mgs_blocks_for", "mgs_twice_if_tiny", "givens", "gmres_csr", "gs_combine",
            "hessenberg_solve"]

# diagonal storage for banded matrices (stencils): conversion and SpMV
from ._dia import (  # noqa: E402
    MIN_ROWS as DIA_MIN_ROWS,
    DiagonalCopy,
    dia_for_solver,
    dia_from_csr,
    dia_gather,
    dia_positions,
    dia_spmv_dot_parallel,
    dia_spmv_dot_serial,
    dia_spmv_parallel,
    dia_spmv_serial,
    stencil_values,
    storage_name as dia_storage_name,
)

__all__ += ["DIA_MIN_ROWS", "DiagonalCopy", "dia_for_solver", "dia_from_csr", "dia_gather", "dia_positions",
            "dia_spmv_serial", "dia_spmv_parallel", "dia_spmv_dot_serial", "dia_spmv_dot_parallel",
            "stencil_values", "dia_storage_name"]

# BiCGSTAB kernels (krylov/bicgstab.py): fused SpMV-with-dots, vector updates, the whole solve
from ._bicgstab import (  # noqa: E402
    axpy_norm,
    bicgstab_csr,
    bicgstab_p,
    bicgstab_xr,
    spmv_dot_with,
    spmv_dots2,
)

__all__ += ["axpy_norm", "bicgstab_csr", "bicgstab_p", "bicgstab_xr", "spmv_dot_with", "spmv_dots2"]
