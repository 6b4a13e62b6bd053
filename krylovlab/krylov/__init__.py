"""Classic Krylov methods, one file per method, all on the kernel layer."""
