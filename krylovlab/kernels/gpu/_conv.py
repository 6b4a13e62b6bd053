"""DCDM network inference kernels on the GPU (CuPy RawKernels).

Same names, signatures and data layout as `krylovlab.kernels.cpu._conv`:
channels-first float32 feature maps with a one-cell zero border, weights in
torch layout ``(C_out, C_in, 3, 3[, 3])``.  One CUDA thread computes one
output value; the 3×3 taps of a channel are read from global memory (the maps
are small enough to live in L2 for the grids DCDM targets).  CuPy is imported
lazily, so importing this module never needs a device.
"""

from __future__ import annotations

import functools

_SRC = r"""
extern "C" {
__global__ void conv2d(const float* inp, const float* w, const float* bias, const float* skip,
                       const int has_skip, const int relu, float* out,
                       const int ci_n, const int co_n, const int H, const int W) {
    long t = (long)blockDim.x * blockIdx.x + threadIdx.x;
    long total = (long)co_n * H * W;
    if (t >= total) return;
    int j = t % W; long r = t / W; int i = r % H; int co = r / H;
    const int Wp = W + 2, HWp = (H + 2) * (W + 2);
    float acc = bias[co];
    for (int ci = 0; ci < ci_n; ++ci) {
        const float* src = inp + (long)ci * HWp + (long)i * Wp + j;
        const float* k = w + ((long)co * ci_n + ci) * 9;
        acc += k[0] * src[0]      + k[1] * src[1]          + k[2] * src[2]
             + k[3] * src[Wp]     + k[4] * src[Wp + 1]     + k[5] * src[Wp + 2]
             + k[6] * src[2 * Wp] + k[7] * src[2 * Wp + 1] + k[8] * src[2 * Wp + 2];
    }
    long o = (long)co * HWp + (long)(i + 1) * Wp + (j + 1);
    if (has_skip) acc += skip[o];
    out[o] = (relu && acc < 0.0f) ? 0.0f : acc;
}

__global__ void conv3d(const float* inp, const float* w, const float* bias, const float* skip,
                       const int has_skip, const int relu, float* out,
                       const int ci_n, const int co_n, const int D, const int H, const int W) {
    long t = (long)blockDim.x * blockIdx.x + threadIdx.x;
    long total = (long)co_n * D * H * W;
    if (t >= total) return;
    int j = t % W; long r = t / W; int i = r % H; r /= H; int k = r % D; int co = r / D;
    const long Wp = W + 2, Hp = H + 2, P = (long)(D + 2) * Hp * Wp;
    float acc = bias[co];
    for (int ci = 0; ci < ci_n; ++ci) {
        const float* kw = w + ((long)co * ci_n + ci) * 27;
        for (int dk = 0; dk < 3; ++dk)
            for (int di = 0; di < 3; ++di) {
                const float* src = inp + ci * P + ((long)(k + dk) * Hp + (i + di)) * Wp + j;
                const float* kk = kw + dk * 9 + di * 3;
                acc += kk[0] * src[0] + kk[1] * src[1] + kk[2] * src[2];
            }
    }
    long o = co * P + ((long)(k + 1) * Hp + (i + 1)) * Wp + (j + 1);
    if (has_skip) acc += skip[o];
    out[o] = (relu && acc < 0.0f) ? 0.0f : acc;
}
}
"""


@functools.lru_cache(maxsize=None)
def _module():
    import cupy

    return cupy.RawModule(code=_SRC)


def _launch(name, total, args):
    block = 256
    grid = (int(total) + block - 1) // block
    _module().get_function(name)((grid,), (block,), args)


def conv3x3_2d(inp, w, bias, skip, relu, out):
    """out[co,i,j] ← act(bias[co] + Σ w[co,ci,di,dj]·inp[ci,i+di,j+dj] (+ skip)) (interiors)."""
    import cupy

    ci_n, Hp, Wp = inp.shape
    co_n = out.shape[0]
    has_skip = skip.size > 0
    _launch("conv2d", co_n * (Hp - 2) * (Wp - 2),
            (inp, w, bias, skip if has_skip else out, cupy.int32(has_skip), cupy.int32(bool(relu)), out,
             cupy.int32(ci_n), cupy.int32(co_n), cupy.int32(Hp - 2), cupy.int32(Wp - 2)))


def conv3x3_3d(inp, w, bias, skip, relu, out):
    """3×3×3 version of `conv3x3_2d`."""
    import cupy

    ci_n, Dp, Hp, Wp = inp.shape
    co_n = out.shape[0]
    has_skip = skip.size > 0
    _launch("conv3d", co_n * (Dp - 2) * (Hp - 2) * (Wp - 2),
            (inp, w, bias, skip if has_skip else out, cupy.int32(has_skip), cupy.int32(bool(relu)), out,
             cupy.int32(ci_n), cupy.int32(co_n), cupy.int32(Dp - 2), cupy.int32(Hp - 2), cupy.int32(Wp - 2)))


def _interior(a, dim):
    return a[(slice(None),) + (slice(1, -1),) * dim]


def avgpool2_2d(inp, out):
    """out[c,I,J] ← mean of the 2×2 block below it (interiors)."""
    f = _interior(inp, 2)
    _interior(out, 2)[...] = 0.25 * (f[:, 0::2, 0::2] + f[:, 0::2, 1::2] + f[:, 1::2, 0::2] + f[:, 1::2, 1::2])


def avgpool2_3d(inp, out):
    """out[c,K,I,J] ← mean of the 2×2×2 block below it (interiors)."""
    f = _interior(inp, 3)
    s = sum(f[:, a::2, b::2, d::2] for a in (0, 1) for b in (0, 1) for d in (0, 1))
    _interior(out, 3)[...] = 0.125 * s


def upsample2_add_2d(coarse, skip, out):
    """out ← nearest 2× upsampling of coarse + skip (interiors)."""
    c = _interior(coarse, 2)
    _interior(out, 2)[...] = c.repeat(2, axis=1).repeat(2, axis=2) + _interior(skip, 2)


def upsample2_add_3d(coarse, skip, out):
    """3D version of `upsample2_add_2d`."""
    c = _interior(coarse, 3)
    _interior(out, 3)[...] = c.repeat(2, axis=1).repeat(2, axis=2).repeat(2, axis=3) + _interior(skip, 3)


def mix_out_2d(inp, w, bias, y):
    """y ← bias + Σ_c w[c]·inp[c] (flattened interior, C order)."""
    import cupy

    y[...] = (cupy.tensordot(w, _interior(inp, 2), axes=(0, 0)) + bias).reshape(-1)


def mix_out_3d(inp, w, bias, y):
    """3D version of `mix_out_2d`."""
    import cupy

    y[...] = (cupy.tensordot(w, _interior(inp, 3), axes=(0, 0)) + bias).reshape(-1)


def load_input_2d(x, scale, out):
    """out[0] interior ← scale·x reshaped to the grid."""
    out[0, 1:-1, 1:-1] = (scale * x).reshape(out.shape[1] - 2, out.shape[2] - 2)


def load_input_3d(x, scale, out):
    """3D version of `load_input_2d`."""
    out[0, 1:-1, 1:-1, 1:-1] = (scale * x).reshape(out.shape[1] - 2, out.shape[2] - 2, out.shape[3] - 2)
