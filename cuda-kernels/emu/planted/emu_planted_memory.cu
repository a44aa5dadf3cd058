// Kernels with planted memory bugs, compiled only for the emulator's own test (MemoryBugsTest): vector
// loads and stores at addresses not aligned to their width, and writes past either end of an
// allocation or an arena region. A GPU faults on the first kind (CUDA_ERROR_MISALIGNED_ADDRESS) and
// corrupts memory (or faults, under compute-sanitizer memcheck) on the second; the emulator must fail the
// launch on each. Never part of the product kernels (cuda-kernels/*.cu).
//
// The vector kernels are correct for an aligned pointer (the test passes one too) and faulty for the
// misaligned one the test passes: one thread loads (or stores) one vector at p and writes the sum of
// its components to out[0].
#include <stdint.h>

// __ldg of a float4: ld.global.nc.v4.f32 needs a 16-byte aligned address.
extern "C" __global__ void emu_planted_ldg_float4(const float* p, float* out)
{
    const float4 v = __ldg(reinterpret_cast<const float4*>(p));
    out[0] = v.x + v.y + v.z + v.w;
}

// A plain dereference of a float4 (ld.global.v4.f32).
extern "C" __global__ void emu_planted_load_float4(const float* p, float* out)
{
    const float4 v = *reinterpret_cast<const float4*>(p);
    out[0] = v.x + v.y + v.z + v.w;
}

// A float2 (8 bytes).
extern "C" __global__ void emu_planted_load_float2(const float* p, float* out)
{
    const float2 v = reinterpret_cast<const float2*>(p)[0];
    out[0] = v.x + v.y;
}

// A double2 (16 bytes) through __ldg.
extern "C" __global__ void emu_planted_ldg_double2(const float* p, float* out)
{
    const double2 v = __ldg(reinterpret_cast<const double2*>(p));
    out[0] = (float)(v.x + v.y);
}

// An int4 (16 bytes).
extern "C" __global__ void emu_planted_load_int4(const float* p, float* out)
{
    const int4 v = *reinterpret_cast<const int4*>(p);
    out[0] = (float)(v.x + v.y + v.z + v.w);
}

// Stores: out[0] = 10 when they succeed; the vector goes to p.
extern "C" __global__ void emu_planted_store_float4(const float* p, float* out)
{
    *reinterpret_cast<float4*>(const_cast<float*>(p)) = make_float4(1.0f, 2.0f, 3.0f, 4.0f);
    out[0] = 10.0f;
}

extern "C" __global__ void emu_planted_store_float2(const float* p, float* out)
{
    reinterpret_cast<float2*>(const_cast<float*>(p))[0] = make_float2(4.0f, 6.0f);
    out[0] = 10.0f;
}

extern "C" __global__ void emu_planted_store_double2(const float* p, float* out)
{
    *reinterpret_cast<double2*>(const_cast<float*>(p)) = make_double2(3.0, 7.0);
    out[0] = 10.0f;
}

// __stcg (st.global.cg) of a float4.
extern "C" __global__ void emu_planted_stcg_float4(const float* p, float* out)
{
    __stcg(reinterpret_cast<float4*>(const_cast<float*>(p)), make_float4(1.0f, 2.0f, 3.0f, 4.0f));
    out[0] = 10.0f;
}

// Bounds. x[i] = i for i in [first, last), grid-stride: last = n + 1 writes one element past the end,
// first = -1 one element before the start. Correct with first = 0, last = n.
extern "C" __global__ void emu_planted_fill(float* x, int64_t first, int64_t last)
{
    for (int64_t i = first + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < last; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = (float)i;
}

// out[0] = the sum of x[0 .. n): n one too many reads past the end.
extern "C" __global__ void emu_planted_sum(const float* x, int64_t n, float* out)
{
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += x[i];
    out[0] = s;
}

// Bounds, read-modify-write: x[i] = x[i] * k for i in [0, last), the arithmetic in double (finish.cu's
// losskit_finish_scale); last = n + 1 scales the element one past the end, a slack NaN that x86 arithmetic
// would give back unchanged were it a quiet one.
extern "C" __global__ void emu_planted_scale_float(float* x, int64_t last, double k)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < last; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = (float)((double)x[i] * k);
}

extern "C" __global__ void emu_planted_scale_double(double* x, int64_t last, double k)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < last; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = x[i] * k;
}
