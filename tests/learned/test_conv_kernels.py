"""The DCDM inference kernels against plain numpy references."""

import numpy as np
import pytest

from krylovlab.kernels import cpu

RNG = np.random.default_rng(7)
EMPTY2 = np.empty((0, 0, 0), np.float32)
EMPTY3 = np.empty((0, 0, 0, 0), np.float32)


def padded(c, *dims):
    a = np.zeros((c, *(d + 2 for d in dims)), np.float32)
    a[(slice(None),) + (slice(1, -1),) * len(dims)] = RNG.standard_normal((c, *dims))
    return a


def ref_conv(inp, w, bias):
    """Direct correlation over the zero-padded map (torch's Conv with padding=1)."""
    dim = inp.ndim - 1
    dims = tuple(s - 2 for s in inp.shape[1:])
    out = np.zeros((w.shape[0], *dims), np.float64) + bias.reshape((-1,) + (1,) * dim)
    for off in np.ndindex(*(3,) * dim):
        sl = tuple(slice(o, o + d) for o, d in zip(off, dims))
        patch = inp[(slice(None),) + sl].astype(np.float64)
        out += np.tensordot(w[(slice(None), slice(None)) + off], patch, axes=(1, 0))
    return out


@pytest.mark.parametrize("ci,co,dims", [(1, 4, (6, 10)), (5, 3, (7, 5)), (16, 16, (12, 12))])
@pytest.mark.parametrize("relu,use_skip", [(False, False), (True, True)])
def test_conv2d_matches_reference(ci, co, dims, relu, use_skip):
    inp = padded(ci, *dims)
    w = RNG.standard_normal((co, ci, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(co).astype(np.float32)
    skip = padded(co, *dims) if use_skip else EMPTY2
    out = np.zeros((co, dims[0] + 2, dims[1] + 2), np.float32)
    cpu.conv3x3_2d(inp, w, b, skip, relu, out)
    ref = ref_conv(inp, w, b)
    if use_skip:
        ref += skip[:, 1:-1, 1:-1]
    if relu:
        ref = np.maximum(ref, 0)
    np.testing.assert_allclose(out[:, 1:-1, 1:-1], ref, rtol=1e-4, atol=1e-4)
    # the zero border (the next layer's padding) is untouched
    assert not out[:, 0].any() and not out[:, -1].any() and not out[:, :, 0].any() and not out[:, :, -1].any()


@pytest.mark.parametrize("relu,use_skip", [(False, False), (True, True)])
def test_conv3d_matches_reference(relu, use_skip):
    dims = (4, 6, 5)
    inp = padded(3, *dims)
    w = RNG.standard_normal((4, 3, 3, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(4).astype(np.float32)
    skip = padded(4, *dims) if use_skip else EMPTY3
    out = np.zeros((4, *(d + 2 for d in dims)), np.float32)
    cpu.conv3x3_3d(inp, w, b, skip, relu, out)
    ref = ref_conv(inp, w, b)
    if use_skip:
        ref += skip[:, 1:-1, 1:-1, 1:-1]
    if relu:
        ref = np.maximum(ref, 0)
    np.testing.assert_allclose(out[:, 1:-1, 1:-1, 1:-1], ref, rtol=1e-4, atol=1e-4)


def test_pool_upsample_mix_load_2d():
    f = padded(3, 6, 8)
    c = np.zeros((3, 5, 6), np.float32)
    cpu.avgpool2_2d(f, c)
    inner = f[:, 1:-1, 1:-1]
    np.testing.assert_allclose(c[:, 1:-1, 1:-1], inner.reshape(3, 3, 2, 4, 2).mean(axis=(2, 4)), rtol=1e-6)
    out = np.zeros_like(f)
    cpu.upsample2_add_2d(c, f, out)
    np.testing.assert_allclose(out[:, 1:-1, 1:-1], c[:, 1:-1, 1:-1].repeat(2, 1).repeat(2, 2) + inner, rtol=1e-6)
    w = RNG.standard_normal(3).astype(np.float32)
    y = np.zeros(48, np.float32)
    cpu.mix_out_2d(f, w, np.float32(0.5), y)
    np.testing.assert_allclose(y, (np.tensordot(w, inner, axes=(0, 0)) + 0.5).ravel(), rtol=1e-5, atol=1e-6)
    x = RNG.standard_normal(48)
    m = np.zeros((1, 8, 10), np.float32)
    cpu.load_input_2d(x, 2.0, m)
    np.testing.assert_allclose(m[0, 1:-1, 1:-1], 2 * x.reshape(6, 8), rtol=1e-6)


def test_pool_upsample_mix_load_3d():
    f = padded(2, 4, 6, 2)
    c = np.zeros((2, 4, 5, 3), np.float32)
    cpu.avgpool2_3d(f, c)
    inner = f[:, 1:-1, 1:-1, 1:-1]
    np.testing.assert_allclose(c[:, 1:-1, 1:-1, 1:-1], inner.reshape(2, 2, 2, 3, 2, 1, 2).mean(axis=(2, 4, 6)),
                               rtol=1e-6)
    out = np.zeros_like(f)
    cpu.upsample2_add_3d(c, f, out)
    up = c[:, 1:-1, 1:-1, 1:-1].repeat(2, 1).repeat(2, 2).repeat(2, 3)
    np.testing.assert_allclose(out[:, 1:-1, 1:-1, 1:-1], up + inner, rtol=1e-6)
    w = RNG.standard_normal(2).astype(np.float32)
    y = np.zeros(48, np.float32)
    cpu.mix_out_3d(f, w, np.float32(-1.0), y)
    np.testing.assert_allclose(y, (np.tensordot(w, inner, axes=(0, 0)) - 1).ravel(), rtol=1e-5, atol=1e-6)
    x = RNG.standard_normal(48)
    m = np.zeros((1, 6, 8, 4), np.float32)
    cpu.load_input_3d(x, 0.5, m)
    np.testing.assert_allclose(m[0, 1:-1, 1:-1, 1:-1], 0.5 * x.reshape(4, 6, 2), rtol=1e-6)


@pytest.mark.gpu
def test_gpu_conv_matches_cpu():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception:
        pytest.skip("no CUDA device")
    from krylovlab.kernels.gpu import _conv as gpu

    inp = padded(5, 9, 8)
    w = RNG.standard_normal((4, 5, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(4).astype(np.float32)
    skip = padded(4, 9, 8)
    out = np.zeros((4, 11, 10), np.float32)
    cpu.conv3x3_2d(inp, w, b, skip, True, out)
    gout = cupy.zeros_like(cupy.asarray(out))
    gpu.conv3x3_2d(cupy.asarray(inp), cupy.asarray(w), cupy.asarray(b), cupy.asarray(skip), True, gout)
    np.testing.assert_allclose(gout.get(), out, rtol=1e-4, atol=1e-4)
