// krylovlab GPU kernels: CSR sparse matrix-vector products and fused level-1
// updates with reductions.
//
// Compiled at run time by CuPy (cupy.RawModule, NVRTC) with the template
// instantiations listed in krylovlab/kernels/gpu/_raw.py (name_expressions),
// and ahead of time by nvcc in tests/kernels/test_gpu_sources.py, so the
// source is checked on machines without a GPU.  It includes no headers.
//
// Scalar types T: float, double, kl_complex<float>, kl_complex<double>
// (the last two have the memory layout of numpy's complex64/complex128).
// Index types I: int (int32) and long long (int64).
//
// Reductions: each block sums its threads' partial results in shared memory
// and thread 0 adds the block sum to out[0] with atomicAdd, so the result is
// accurate but its last bits depend on the order blocks finish.
// Launch every kernel with KL_BLOCK threads per block (a power of two).

#define KL_BLOCK 256

template <typename T>
struct alignas(2 * sizeof(T)) kl_complex {
    T re;
    T im;
};

// ------------------------------------------------------------------ arithmetic
template <typename T>
__device__ __forceinline__ kl_complex<T> operator+(kl_complex<T> a, kl_complex<T> b) {
    return kl_complex<T>{a.re + b.re, a.im + b.im};
}
template <typename T>
__device__ __forceinline__ kl_complex<T> operator-(kl_complex<T> a, kl_complex<T> b) {
    return kl_complex<T>{a.re - b.re, a.im - b.im};
}
template <typename T>
__device__ __forceinline__ kl_complex<T> operator*(kl_complex<T> a, kl_complex<T> b) {
    return kl_complex<T>{a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
// real · complex (Jacobi: a real inverse diagonal times a complex residual)
template <typename T>
__device__ __forceinline__ kl_complex<T> operator*(T a, kl_complex<T> b) {
    return kl_complex<T>{a * b.re, a * b.im};
}

template <typename T> __device__ __forceinline__ T kl_zero() { return T(0); }
template <> __device__ __forceinline__ kl_complex<float> kl_zero<kl_complex<float> >() {
    return kl_complex<float>{0.0f, 0.0f};
}
template <> __device__ __forceinline__ kl_complex<double> kl_zero<kl_complex<double> >() {
    return kl_complex<double>{0.0, 0.0};
}

__device__ __forceinline__ float kl_conj(float a) { return a; }
__device__ __forceinline__ double kl_conj(double a) { return a; }
template <typename T>
__device__ __forceinline__ kl_complex<T> kl_conj(kl_complex<T> a) { return kl_complex<T>{a.re, -a.im}; }

// |a|², accumulated in double whatever the precision
__device__ __forceinline__ double kl_abs2(float a) { return (double)a * (double)a; }
__device__ __forceinline__ double kl_abs2(double a) { return a * a; }
template <typename T>
__device__ __forceinline__ double kl_abs2(kl_complex<T> a) {
    return (double)a.re * (double)a.re + (double)a.im * (double)a.im;
}

__device__ __forceinline__ void kl_atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void kl_atomic_add(double* p, double v) { atomicAdd(p, v); }
template <typename T>
__device__ __forceinline__ void kl_atomic_add(kl_complex<T>* p, kl_complex<T> v) {
    atomicAdd(&(p->re), v.re);
    atomicAdd(&(p->im), v.im);
}

__device__ __forceinline__ float kl_shfl_down(float v, int off) { return __shfl_down_sync(0xffffffffu, v, off); }
__device__ __forceinline__ double kl_shfl_down(double v, int off) { return __shfl_down_sync(0xffffffffu, v, off); }
template <typename T>
__device__ __forceinline__ kl_complex<T> kl_shfl_down(kl_complex<T> v, int off) {
    return kl_complex<T>{kl_shfl_down(v.re, off), kl_shfl_down(v.im, off)};
}

// Sum over the 32 lanes of a warp; lane 0 holds the result.
template <typename T>
__device__ __forceinline__ T kl_warp_sum(T v) {
    for (int off = 16; off > 0; off >>= 1) v = v + kl_shfl_down(v, off);
    return v;
}

// Sum over the block (blockDim.x == KL_BLOCK); thread 0 holds the result.
// Every thread of the block must call it.
template <typename T>
__device__ T kl_block_sum(T v) {
    __shared__ T buf[KL_BLOCK];
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = KL_BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) buf[threadIdx.x] = buf[threadIdx.x] + buf[threadIdx.x + s];
        __syncthreads();
    }
    return buf[0];
}

// --------------------------------------------------------------------- SpMV
// y ← A x, one thread per row (best for short rows, e.g. stencils).
template <typename T, typename I>
__global__ void kl_spmv_row(const long long n, const I* __restrict__ indptr, const I* __restrict__ indices,
                            const T* __restrict__ data, const T* __restrict__ x, T* __restrict__ y) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        T acc = kl_zero<T>();
        for (I k = indptr[i]; k < indptr[i + 1]; ++k) acc = acc + data[k] * x[indices[k]];  // Σ_k a_ik x_j(k)
        y[i] = acc;
    }
}

// y ← A x, one warp per row (coalesced loads; best for long rows).
template <typename T, typename I>
__global__ void kl_spmv_warp(const long long n, const I* __restrict__ indptr, const I* __restrict__ indices,
                             const T* __restrict__ data, const T* __restrict__ x, T* __restrict__ y) {
    const int lane = threadIdx.x & 31;
    const long long nwarps = ((long long)gridDim.x * blockDim.x) >> 5;
    for (long long row = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5; row < n; row += nwarps) {
        T acc = kl_zero<T>();
        for (I k = indptr[row] + lane; k < indptr[row + 1]; k += 32) acc = acc + data[k] * x[indices[k]];
        acc = kl_warp_sum(acc);
        if (lane == 0) y[row] = acc;
    }
}

// y ← A x and out[0] += xᴴ y, one thread per row (out must start at 0).
template <typename T, typename I>
__global__ void kl_spmv_dot_row(const long long n, const I* __restrict__ indptr, const I* __restrict__ indices,
                                const T* __restrict__ data, const T* __restrict__ x, T* __restrict__ y,
                                T* __restrict__ out) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    T part = kl_zero<T>();
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        T acc = kl_zero<T>();
        for (I k = indptr[i]; k < indptr[i + 1]; ++k) acc = acc + data[k] * x[indices[k]];
        y[i] = acc;
        part = part + kl_conj(x[i]) * acc;  // conj(x_i) · y_i
    }
    part = kl_block_sum(part);
    if (threadIdx.x == 0) kl_atomic_add(out, part);
}

// y ← A x and out[0] += xᴴ y, one warp per row.
template <typename T, typename I>
__global__ void kl_spmv_dot_warp(const long long n, const I* __restrict__ indptr, const I* __restrict__ indices,
                                 const T* __restrict__ data, const T* __restrict__ x, T* __restrict__ y,
                                 T* __restrict__ out) {
    const int lane = threadIdx.x & 31;
    const long long nwarps = ((long long)gridDim.x * blockDim.x) >> 5;
    T part = kl_zero<T>();
    for (long long row = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5; row < n; row += nwarps) {
        T acc = kl_zero<T>();
        for (I k = indptr[row] + lane; k < indptr[row + 1]; k += 32) acc = acc + data[k] * x[indices[k]];
        acc = kl_warp_sum(acc);
        if (lane == 0) {
            y[row] = acc;
            part = part + kl_conj(x[row]) * acc;
        }
    }
    part = kl_block_sum(part);
    if (threadIdx.x == 0) kl_atomic_add(out, part);
}

// ------------------------------------------------------------ fused updates
// x ← x + α p;  r ← r − α q;  rr[0] += ‖r‖² (in double).  α is read from device memory.
template <typename T>
__global__ void kl_cg_update(const long long n, const T* __restrict__ alpha, const T* __restrict__ p,
                             const T* __restrict__ q, T* __restrict__ x, T* __restrict__ r,
                             double* __restrict__ rr) {
    const T a = alpha[0];
    const long long stride = (long long)gridDim.x * blockDim.x;
    double part = 0.0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        x[i] = x[i] + a * p[i];        // x ← x + α p
        const T ri = r[i] - a * q[i];  // r ← r − α q
        r[i] = ri;
        part += kl_abs2(ri);
    }
    part = kl_block_sum(part);
    if (threadIdx.x == 0) atomicAdd(rr, part);
}

// z ← D⁻¹ r and out[0] += rᴴ z, with D⁻¹ stored as a real vector of type R.
template <typename R, typename T>
__global__ void kl_jacobi(const long long n, const R* __restrict__ inv_diag, const T* __restrict__ r,
                          T* __restrict__ z, T* __restrict__ out) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    T part = kl_zero<T>();
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const T zi = inv_diag[i] * r[i];  // z_i ← r_i / a_ii
        z[i] = zi;
        part = part + kl_conj(r[i]) * zi;
    }
    part = kl_block_sum(part);
    if (threadIdx.x == 0) kl_atomic_add(out, part);
}
