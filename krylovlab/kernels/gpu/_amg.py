"""AMG V-cycle on the GPU (CuPy / cupyx).

The hierarchy's matrices (A_l, P_l, R_l) are copied to the device once, as
cupyx CSR matrices, together with 1/diag(A_l) and the dense pseudo-inverse
of the coarsest matrix.  The cycle then runs entirely on the device:

    down:   x_l ← ν₁ damped-Jacobi steps from 0;  b_{l+1} ← R_l (b_l − A_l x_l)
    coarse: x_c ← A_c⁺ b_c                       (dense matrix–vector product)
    up:     x_l ← x_l + P_l x_{l+1};  ν₂ damped-Jacobi steps

Damped Jacobi (x ← x + ω D⁻¹(b − A x)) is the smoother because a sequential
Gauss–Seidel sweep has no efficient GPU form; a multicolour Gauss–Seidel from
the relaxation family can replace it once that exists for the GPU.  The
cycle does the same arithmetic as the CPU cycle with ``smoother="jacobi"``
(`krylovlab.kernels.cpu._amg`), so the two agree to rounding.

Nothing is read back to the host during a cycle.  CuPy is imported when a
`DeviceHierarchy` is created, not when this module is imported.
"""

from __future__ import annotations

__all__ = ["DeviceHierarchy"]


def _jacobi_kernel():
    import cupy as cp

    # x ← x + ω·dinv·(b − A x), with t = A x computed beforehand
    return cp.ElementwiseKernel("T omega, T dinv, T b, T t", "T x", "x += omega * dinv * (b - t)",
                                "kl_amg_jacobi_update")


class DeviceHierarchy:
    """A multigrid hierarchy resident on the GPU; ``vcycle(b)`` returns B b.

    Parameters
    ----------
    As, Ps, Rs : lists of scipy CSR matrices
        Level matrices (L of them), prolongations and restrictions (L − 1).
    cinv : ndarray
        Row-major pseudo-inverse of the coarsest matrix (flattened).
    omega : float
        Jacobi damping.
    presweeps, postsweeps : int
    """

    def __init__(self, As, Ps, Rs, cinv, omega, presweeps, postsweeps):
        import cupy as cp
        import cupyx.scipy.sparse as csp

        self.cp = cp
        dtype = As[0].dtype
        self.As = [csp.csr_matrix(a) for a in As[:-1]]
        self.Ps = [csp.csr_matrix(p.astype(dtype)) for p in Ps]
        self.Rs = [csp.csr_matrix(r.astype(dtype)) for r in Rs]
        self.dinv = [cp.asarray(1.0 / a.diagonal()).astype(dtype) for a in As[:-1]]
        nc = As[-1].shape[0]
        self.cinv = cp.asarray(cinv.reshape(nc, nc)).astype(dtype)
        self.omega = dtype.type(omega)
        self.pre, self.post = int(presweeps), int(postsweeps)
        self._update = _jacobi_kernel()

    def _smooth(self, lev, x, b, steps):
        A, d = self.As[lev], self.dinv[lev]
        for _ in range(steps):
            t = A @ x  # t ← A x
            self._update(self.omega, d, b, t, x)  # x ← x + ω D⁻¹ (b − t)

    def vcycle(self, b):
        """One V-cycle from x = 0 for A x = b (b a CuPy vector); returns x."""
        cp = self.cp
        L = len(self.As) + 1
        xs, bs = [], [b]
        for lev in range(L - 1):
            x = cp.zeros_like(bs[lev])
            self._smooth(lev, x, bs[lev], self.pre)
            r = bs[lev] - self.As[lev] @ x  # r ← b − A x
            xs.append(x)
            bs.append(self.Rs[lev] @ r)  # b_c ← R r
        xc = self.cinv @ bs[-1]  # x_c ← A_c⁺ b_c
        for lev in range(L - 2, -1, -1):
            x = xs[lev]
            x += self.Ps[lev] @ xc  # x ← x + P x_c
            self._smooth(lev, x, bs[lev], self.post)
            xc = x
        return xc
