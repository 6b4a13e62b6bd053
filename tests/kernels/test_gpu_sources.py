"""Compile the raw CUDA source of the GPU kernels with nvcc, when nvcc is on
PATH, instantiating exactly the templates the Python side launches.  This
catches typos on machines without a GPU."""

import shutil
import subprocess

import pytest

from krylovlab.kernels.gpu import _raw

nvcc = shutil.which("nvcc")


def test_name_expressions_cover_every_dtype_and_index_type():
    names = _raw.name_expressions()
    assert len(names) == len(set(names)) == 4 * (2 * 4 + 2) + 2  # + complex-D⁻¹ Jacobi
    for ctype in _raw.CTYPES.values():
        assert any(f"<{ctype}, long long>" in n for n in names)
    assert "kl_jacobi<float, kl_complex<float>>" in names
    assert "kl_jacobi<kl_complex<double>, kl_complex<double>>" in names


def test_block_size_matches_source():
    assert f"#define KL_BLOCK {_raw.BLOCK}" in _raw.source()


@pytest.mark.skipif(nvcc is None, reason="nvcc is not on PATH")
def test_nvcc_compiles_every_instance(tmp_path):
    # Taking each kernel's address forces nvcc to instantiate and compile it.
    lines = [f'#include "{_raw.source_path()}"', "void* kl_all_kernels[] = {"]
    lines += [f"    (void*)&{name}," for name in _raw.name_expressions()]
    lines += ["};", ""]
    unit = tmp_path / "all_kernels.cu"
    unit.write_text("\n".join(lines))
    # Also compile the file on its own, as NVRTC sees it (no instantiations).
    for src, out in ((unit, tmp_path / "all.ptx"), (_raw.source_path(), tmp_path / "bare.ptx")):
        proc = subprocess.run(
            [nvcc, "--ptx", "-std=c++11", *_raw.NVRTC_OPTIONS, "-Werror", "all-warnings", str(src), "-o", str(out)],
            capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, f"nvcc failed on {src}:\n{proc.stdout}\n{proc.stderr}"
        assert out.stat().st_size > 0
    ptx = (tmp_path / "all.ptx").read_text()
    assert ptx.count(".entry") == len(_raw.name_expressions())


def test_gpu_module_imports_without_device_and_exports_cpu_contract():
    from krylovlab.kernels import cpu, gpu

    contract = {"spmv", "spmv_dot", "dot", "norm2", "axpby", "cg_update", "jacobi", "sor_sweep"}
    assert contract <= set(gpu.__all__)
    assert contract <= set(cpu.__all__)
    import inspect

    for name in contract:
        cpu_params = list(inspect.signature(getattr(cpu, name).serial if hasattr(getattr(cpu, name), "serial")
                                            else getattr(cpu, name)).parameters)
        assert list(inspect.signature(getattr(gpu, name)).parameters) == cpu_params, name


def test_gpu_sor_sweep_rejects_host_arrays():
    """The GPU sweep exists and, like every GPU kernel, refuses host arrays instead of copying."""
    pytest.importorskip("cupy")
    import numpy as np

    from krylovlab.kernels import gpu

    a = np.ones(3)
    with pytest.raises(TypeError):
        gpu.sor_sweep(np.array([0, 1, 2, 3]), np.arange(3), a, a.copy(), a, 1.0, 0, 3, 1)


def test_gpu_kernels_reject_host_arrays():
    pytest.importorskip("cupy")
    import numpy as np

    from krylovlab.kernels import gpu

    with pytest.raises(TypeError, match="CuPy array"):
        gpu.dot(np.ones(3), np.ones(3))
