"""Compute kernels on raw arrays.

``kernels.cpu`` (numba) and ``kernels.gpu`` (CuPy) export the same names with
the same signatures; ``kernels._reference`` is the slow numpy truth both are
tested against.  Nothing here imports anything above ``kernels``.
"""
