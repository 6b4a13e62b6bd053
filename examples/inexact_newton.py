"""Inexact Newton with sketch-and-project inner solves under an adaptive accuracy test.

The use case of Hong, Na, Mahoney & Kolar (ICML 2023, "AdaSketch-Newton"): a
Newton/SQP method solves its KKT systems only approximately with a randomized
iterative sketching solver, and tightens the accuracy as it converges.

Problem (equality-constrained nonlinear least squares):

    minimise  f(x) = ½‖A x − y‖² + (μ/4)·Σ x_i⁴   subject to  C x = d.

Newton step on the Lagrangian L = f + λᵀ(C x − d):

    [H  Cᵀ] [Δx]     [∇f(x) + Cᵀλ]
    [C  0 ] [Δλ] = − [C x − d    ],      H = AᵀA + 3μ·diag(x²).

The KKT matrix K is square, symmetric and indefinite; the systems are
consistent, so randomized Kaczmarz (or Gaussian sketch-and-project) converges.
The inner solve stops through krylovlab's ``stop=`` rule as soon as

    ‖K z − g‖ ≤ θ_k·‖g‖,   θ_k = min(0.5, ‖g‖)           (forcing sequence → 0),

which gives local superlinear convergence of the outer method (Dembo,
Eisenstat & Steihaug 1982) while early steps stay cheap.

    python examples/inexact_newton.py                 # Kaczmarz inner solver
    python examples/inexact_newton.py --inner gaussian
"""

from __future__ import annotations

import argparse

import numpy as np

from krylovlab import solve


def make_problem(n=40, p=6, mu=0.1, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((3 * n, n)) / np.sqrt(3 * n)
    y = rng.standard_normal(3 * n)
    C = rng.standard_normal((p, n)) / np.sqrt(n)
    d = rng.standard_normal(p)
    return A, y, C, d, mu


def kkt(x, lam, A, y, C, d, mu):
    """KKT matrix K and residual g = (∇ₓL, c)."""
    grad = A.T @ (A @ x - y) + mu * x**3 + C.T @ lam
    H = A.T @ A + 3 * mu * np.diag(x**2)
    p = C.shape[0]
    K = np.block([[H, C.T], [C, np.zeros((p, p))]])
    return K, np.concatenate([grad, C @ x - d])


def main(argv=None):
    ap = argparse.ArgumentParser(description="inexact Newton with sketch-and-project inner solves")
    ap.add_argument("--inner", choices=["kaczmarz", "gaussian"], default="kaczmarz")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    A, y, C, d, mu = make_problem(seed=args.seed)
    n, p = A.shape[1], C.shape[0]
    x, lam = np.zeros(n), np.zeros(p)
    method = "kaczmarz" if args.inner == "kaczmarz" else "sketch-project"
    extra = {} if args.inner == "kaczmarz" else {"sketch": "gaussian", "block_size": 4}
    print(f"inner solver: {method} {extra}")
    print(" it   ‖KKT residual‖    θ_k      inner its   inner ‖r‖/‖g‖   step")
    total_inner = 0
    for k in range(30):
        K, g = kkt(x, lam, A, y, C, d, mu)
        gnorm = np.linalg.norm(g)
        if gnorm <= 1e-10:
            break
        theta = min(0.5, gnorm)

        def accurate_enough(info, theta=theta, gnorm=gnorm):
            # the outer method's adaptive accuracy test, on the true inner residual
            return info.rnorm <= theta * gnorm

        res = solve(K, -g, method=method, rtol=1e-14, maxiter=5000, stop=accurate_enough, rng=k, **extra)
        if not (res.converged or res.extras.get("stop_rule") == "met"):
            raise RuntimeError(f"inner solve failed at outer iteration {k}: {res.status.name} ({res.message})")
        total_inner += res.iterations
        dx, dlam = res.x[:n], res.x[n:]
        # backtracking on the KKT residual norm (merit function)
        step = 1.0
        while step > 1e-4:
            _, g_new = kkt(x + step * dx, lam + step * dlam, A, y, C, d, mu)
            if np.linalg.norm(g_new) <= (1 - 1e-4 * step) * gnorm:
                break
            step *= 0.5
        x, lam = x + step * dx, lam + step * dlam
        print(f"{k:3d}   {gnorm:12.3e}   {theta:7.1e}   {res.iterations:9d}   {res.rnorm / gnorm:12.2e}   {step:.3g}")
    _, g = kkt(x, lam, A, y, C, d, mu)
    print(f"final ‖KKT residual‖ = {np.linalg.norm(g):.3e}, constraint ‖Cx − d‖ = {np.linalg.norm(C @ x - d):.2e}, "
          f"inner iterations (epochs) in total: {total_inner}")
    return np.linalg.norm(g)


if __name__ == "__main__":
    main()
