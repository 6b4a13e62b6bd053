"""Inputs to one internal form, validated once.

`as_operator` turns whatever the user passed as ``A`` (a dense array, a scipy
or cupyx sparse matrix/array, a `LinearOperator`, a callable) into an
`Operator`: a shape, a dtype, ``matvec``, the raw CSR arrays when there are
some (so solvers can take a fully jitted path), and lazily computed tags
(``symmetric``, ``positive_diagonal``) that drive ``method="auto"``.

`as_preconditioner` does the same for ``M``: a matrix, a `LinearOperator`, a
callable, a pyamg hierarchy, or anything with ``aspreconditioner()``.  A
diagonal ``M`` (or `krylovlab.Jacobi`) is recognised so that jitted loops can
apply it themselves.

`check_vector`, `check_tolerances` and `result_dtype` are the shared
validation used by every solver.
"""

from __future__ import annotations

import functools
import numbers

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = [
    "Operator",
    "Preconditioner",
    "Jacobi",
    "as_operator",
    "as_preconditioner",
    "check_vector",
    "check_tolerances",
    "result_dtype",
    "is_device_array",
]

_FLOAT_KINDS = "fc"


def is_device_array(a) -> bool:
    """True for CuPy arrays and cupyx sparse matrices (checked without importing CuPy)."""
    mod = type(a).__module__
    return mod.startswith("cupy") or mod.startswith("cupyx")


def _promote_dtype(dtype, what: str) -> np.dtype:
    """Float and complex dtypes pass; integers and booleans promote to float64."""
    dtype = np.dtype(dtype)
    if dtype.kind in _FLOAT_KINDS:
        if dtype.itemsize < 4 or dtype == np.float16:
            raise TypeError(f"{what} has dtype {dtype}; use float32, float64, complex64 or complex128")
        if dtype.kind == "f" and dtype.itemsize > 8 or dtype.kind == "c" and dtype.itemsize > 16:
            raise TypeError(f"{what} has extended-precision dtype {dtype}, which the kernels do not support")
        return dtype
    if dtype.kind in "iub":
        return np.dtype(np.float64)
    raise TypeError(f"{what} has dtype {dtype}; a float or complex dtype is required")


def result_dtype(*dtypes) -> np.dtype:
    """Working precision for a solve: the common float/complex type of the inputs."""
    out = np.result_type(*[_promote_dtype(d, "input") for d in dtypes if d is not None])
    return _promote_dtype(out, "input")


def check_tolerances(rtol, atol) -> tuple[float, float]:
    """Reject negative, NaN and non-numeric tolerances (scipy rejects them too)."""
    out = []
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, str) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} must be a non-negative real number, got {value!r}")
        value = float(value)
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
        out.append(value)
    return out[0], out[1]


def check_vector(v, n: int, name: str, xp=np):
    """Validate a right-hand side or initial guess: length n, numeric, finite.

    Accepts shapes (n,) and (n, 1); returns a 1-D array (a view when possible).
    """
    if v is None:
        raise ValueError(f"{name} must not be None")
    if not hasattr(v, "shape"):
        v = np.asarray(v)
    if v.dtype == object or v.dtype.kind not in "fciub":
        raise TypeError(f"{name} has dtype {v.dtype}; a numeric array is required")
    if v.ndim == 2 and v.shape[1] == 1:
        v = v.reshape(-1)
    if v.ndim != 1 or v.shape[0] != n:
        raise ValueError(f"{name} has shape {tuple(v.shape)}, but the operator needs a vector of length {n}")
    if v.dtype.kind in "iub":
        v = v.astype(np.float64)
    if not bool(xp.isfinite(v).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return v


def _check_finite_values(data, what: str, xp=np):
    if not data.size:
        return
    if (xp is np and isinstance(data, np.ndarray) and data.size >= 1 << 16 and data.dtype.kind in "fc"
            and (data.flags.c_contiguous or data.flags.f_contiguous)):
        # large host arrays: one streaming numba pass instead of a bool temporary of the same length
        from .kernels import cpu

        flat = data.ravel(order="K")
        if flat.dtype.kind == "c":
            flat = flat.view(flat.real.dtype)
        ok = bool(cpu.all_finite(flat))
    else:
        ok = bool(xp.isfinite(data).all())
    if not ok:
        raise ValueError(f"{what} contains NaN or Inf")


class Operator:
    """A validated square (or rectangular) linear operator.

    Attributes
    ----------
    shape : tuple
    dtype : numpy dtype (float or complex)
    kind : ``"csr"``, ``"dense"`` or ``"linop"``
    csr : scipy (or cupyx) CSR matrix, or None
    dense : ndarray, or None
    device : bool -- True when the data lives on a GPU (CuPy)
    source : the object the user passed (used to notice operator changes)
    """

    def __init__(self, shape, dtype, kind, *, csr=None, dense=None, linop=None, device=False, source=None):
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.kind = kind
        self.csr = csr
        self.dense = dense
        self.linop = linop
        self.device = device
        self.source = source

    # -- products -----------------------------------------------------------------
    def matvec(self, x, out=None):
        """y = A x (into ``out`` when given and the operator supports it)."""
        if self.kind == "csr" and not self.device:
            from .kernels import cpu

            if out is None:
                out = np.empty(self.shape[0], dtype=np.result_type(self.dtype, x.dtype))
            cpu.spmv(self.csr.indptr, self.csr.indices, self.csr.data, x, out)
            return out
        if self.kind == "csr" or self.kind == "dense":
            mat = self.csr if self.kind == "csr" else self.dense
            y = mat @ x
        else:
            y = self.linop.matvec(x)
            y = y.reshape(-1)
        if out is not None:
            out[...] = y
            return out
        return y

    def rmatvec(self, x):
        """y = Aᴴ x."""
        if self.kind == "csr":
            return self.csr.conj().T @ x if self.dtype.kind == "c" else self.csr.T @ x
        if self.kind == "dense":
            return self.dense.conj().T @ x
        return self.linop.rmatvec(x).reshape(-1)

    def aslinearoperator(self) -> spla.LinearOperator:
        if self.kind == "linop":
            return self.linop
        return spla.LinearOperator(self.shape, matvec=self.matvec, rmatvec=self.rmatvec, dtype=self.dtype)

    # -- facts ----------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.shape[0]

    @functools.cached_property
    def diagonal(self):
        """Main diagonal, when the operator is explicit (else None)."""
        if self.kind == "csr":
            return self.csr.diagonal()
        if self.kind == "dense":
            return self.dense.diagonal().copy()
        return None

    @functools.cached_property
    def symmetric(self) -> bool | None:
        """Hermitian to rounding (None when the operator is implicit)."""
        if self.shape[0] != self.shape[1]:
            return False
        if self.kind == "csr":
            a = self.csr
            d = a - (a.conj().T if self.dtype.kind == "c" else a.T)
            scale = abs(a).max() if a.nnz else 0.0
            return bool(d.nnz == 0 or abs(d).max() <= 1e-12 * max(float(scale), 1e-300))
        if self.kind == "dense":
            a = self.dense
            xp = _namespace(a)
            scale = float(xp.abs(a).max()) if a.size else 0.0
            return bool(xp.abs(a - a.conj().T).max() <= 1e-12 * max(scale, 1e-300))
        return None

    @functools.cached_property
    def positive_diagonal(self) -> bool | None:
        d = self.diagonal
        if d is None:
            return None
        xp = _namespace(d)
        if self.dtype.kind == "c":
            return bool((xp.abs(d.imag) <= 1e-12 * xp.abs(d.real)).all() and (d.real > 0).all())
        return bool((d > 0).all())

    def __repr__(self):
        return f"Operator(kind={self.kind!r}, shape={self.shape}, dtype={self.dtype})"


def _namespace(a):
    if is_device_array(a):
        import cupy

        return cupy
    return np


def _canonical_csr(a, what, check_finite):
    """CSR with sorted, deduplicated indices, float dtype, finite values."""
    a = sp.csr_matrix(a) if not isinstance(a, sp.csr_matrix) else a
    dtype = _promote_dtype(a.dtype, what)
    if a.dtype != dtype:
        a = a.astype(dtype)
    if not a.has_canonical_format:
        a = a.copy()
        a.sum_duplicates()
    if check_finite:
        _check_finite_values(a.data, what)
    return a


def as_operator(A, *, name: str = "A", square: bool = True, n: int | None = None,
                check_finite: bool = True) -> Operator:
    """Validate ``A`` and wrap it as an `Operator`.

    Parameters
    ----------
    A : ndarray, scipy sparse, cupy/cupyx array, LinearOperator, Operator or callable
        A callable ``A(x) -> A @ x`` needs ``n`` (the operator is then n × n).
    name : str
        Used in error messages.
    square : bool
        Require a square operator.
    n : int, optional
        Size for callables.
    check_finite : bool
        Reject NaN/Inf entries of explicit matrices.

    Raises
    ------
    TypeError
        For unsupported objects and non-numeric dtypes.
    ValueError
        For wrong dimensions, non-square operators and non-finite entries.
    """
    if isinstance(A, Operator):
        op = A
    elif is_device_array(A):
        op = _device_operator(A, name, check_finite)
    elif sp.issparse(A):
        if A.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got {A.ndim}-D")
        op = Operator(A.shape, None, "csr", csr=None, source=A)
        op.csr = _canonical_csr(A, name, check_finite)
        op.dtype = op.csr.dtype
    elif isinstance(A, spla.LinearOperator):
        if A.dtype is None:
            raise TypeError(f"{name} is a LinearOperator without a dtype")
        dtype = _promote_dtype(A.dtype, name)
        op = Operator(A.shape, dtype, "linop", linop=A, source=A)
    elif isinstance(A, np.ndarray) or hasattr(A, "__array__") and not callable(A):
        arr = np.asarray(A)
        if arr.dtype == object or arr.dtype.kind not in "fciub":
            raise TypeError(f"{name} has dtype {arr.dtype}; a float or complex matrix is required")
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {arr.shape}")
        dtype = _promote_dtype(arr.dtype, name)
        arr = np.ascontiguousarray(arr, dtype=dtype)
        if check_finite:
            _check_finite_values(arr, name)
        op = Operator(arr.shape, dtype, "dense", dense=arr, source=A)
    elif callable(A):
        if n is None:
            raise TypeError(f"{name} is a callable; its size is unknown (give a LinearOperator instead)")
        lin = spla.LinearOperator((n, n), matvec=A, dtype=np.float64)
        op = Operator((n, n), np.float64, "linop", linop=lin, source=A)
    else:
        raise TypeError(
            f"{name} of type {type(A).__name__} is not supported: pass a dense array, a scipy sparse "
            "matrix, a LinearOperator or a callable"
        )
    if square and op.shape[0] != op.shape[1]:
        raise ValueError(f"{name} must be square, got shape {op.shape}")
    return op


def _device_operator(A, name, check_finite) -> Operator:
    import cupy
    import cupyx.scipy.sparse as csp

    if csp.issparse(A):
        a = A.tocsr() if A.format != "csr" else A
        dtype = _promote_dtype(a.dtype, name)
        if a.dtype != dtype:
            a = a.astype(dtype)
        if not a.has_canonical_format:
            a = a.copy()
            a.sum_duplicates()
        if check_finite:
            _check_finite_values(a.data, name, cupy)
        return Operator(a.shape, dtype, "csr", csr=a, device=True, source=A)
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {A.shape}")
    dtype = _promote_dtype(A.dtype, name)
    arr = cupy.ascontiguousarray(A, dtype=dtype)
    if check_finite:
        _check_finite_values(arr, name, cupy)
    return Operator(arr.shape, dtype, "dense", dense=arr, device=True, source=A)


# ---------------------------------------------------------------------------------------------
# Preconditioners
# ---------------------------------------------------------------------------------------------
class Preconditioner:
    """z = M r for an approximation M ≈ A⁻¹.

    ``inv_diag`` is set when M is diagonal (Jacobi), so jitted loops can apply
    it inline; otherwise ``apply`` is used.
    """

    def __init__(self, apply, n, *, inv_diag=None, source=None, description="user"):
        self._apply = apply
        self.n = n
        self.inv_diag = inv_diag
        self.source = source
        self.description = description

    def apply(self, r, out=None):
        if self.inv_diag is not None:
            z = self.inv_diag * r
            if out is None:
                return z
            out[...] = z
            return out
        z = self._apply(r)
        z = z.reshape(-1) if hasattr(z, "reshape") else np.asarray(z).reshape(-1)
        if out is not None:
            out[...] = z
            return out
        return z

    def __repr__(self):
        return f"Preconditioner({self.description}, n={self.n})"


class Jacobi:
    """Diagonal (Jacobi) preconditioner, M = diag(A)⁻¹.

    Solvers with a fully jitted loop apply it inside the loop.

    Examples
    --------
    >>> import krylovlab
    >>> from krylovlab.gallery import poisson
    >>> A = poisson((32, 32))
    >>> x, info = krylovlab.cg(A, A @ (0 * A.diagonal() + 1), M=krylovlab.Jacobi(A))
    >>> info
    0
    """

    def __init__(self, A):
        op = as_operator(A, name="A")
        d = op.diagonal
        if d is None:
            raise TypeError("Jacobi needs an explicit matrix (dense or sparse), not a LinearOperator")
        xp = _namespace(d)
        if bool((d == 0).any()):
            raise ValueError("Jacobi: the matrix has a zero on its diagonal")
        self.inv_diag = xp.ascontiguousarray(1.0 / d)
        self.shape = op.shape

    def aspreconditioner(self) -> spla.LinearOperator:
        d = self.inv_diag
        return spla.LinearOperator(self.shape, matvec=lambda r: d * r.reshape(-1), dtype=d.dtype)


def _diagonal_of(M):
    """inv_diag if the sparse matrix M is purely diagonal, else None."""
    if not sp.issparse(M) or M.shape[0] != M.shape[1]:
        return None
    coo = M.tocoo()
    if coo.nnz and np.any(coo.row != coo.col):
        return None
    return np.ascontiguousarray(M.diagonal())


def as_preconditioner(M, n: int, *, name: str = "M") -> Preconditioner | None:
    """Wrap ``M`` (≈ A⁻¹) for use by a solver; None stays None."""
    if M is None:
        return None
    if isinstance(M, Preconditioner):
        return M
    if isinstance(M, Jacobi):
        if M.shape[0] != n:
            raise ValueError(f"{name} has shape {M.shape}, expected ({n}, {n})")
        return Preconditioner(None, n, inv_diag=M.inv_diag, source=M, description="jacobi")
    # pyamg MultilevelSolver and krylovlab objects (SSOR, AMG) expose aspreconditioner().
    if hasattr(M, "aspreconditioner") and not isinstance(M, spla.LinearOperator):
        M = M.aspreconditioner()
    if sp.issparse(M):
        if M.shape != (n, n):
            raise ValueError(f"{name} has shape {M.shape}, expected ({n}, {n})")
        _check_finite_values(M.data, name)
        d = _diagonal_of(M)
        if d is not None:
            d = d.astype(_promote_dtype(d.dtype, name))
            return Preconditioner(None, n, inv_diag=d, source=M, description="diagonal")
        Mc = M.tocsr()
        return Preconditioner(lambda r: Mc @ r, n, source=M, description="sparse matrix")
    if isinstance(M, spla.LinearOperator):
        if M.shape != (n, n):
            raise ValueError(f"{name} has shape {M.shape}, expected ({n}, {n})")
        return Preconditioner(M.matvec, n, source=M, description=type(M).__name__)
    if is_device_array(M):
        op = _device_operator(M, name, True)
        return Preconditioner(op.matvec, n, source=M, description="device matrix")
    if isinstance(M, np.ndarray):
        op = as_operator(M, name=name)
        if op.shape != (n, n):
            raise ValueError(f"{name} has shape {op.shape}, expected ({n}, {n})")
        return Preconditioner(op.matvec, n, source=M, description="dense matrix")
    if callable(M):
        return Preconditioner(M, n, source=M, description="callable")
    raise TypeError(f"{name} of type {type(M).__name__} is not a supported preconditioner")
