using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sora.Kernels.Cpu;

internal static unsafe partial class MicroKernel
{
    /// <summary>
    /// The MR×NR product for AVX2 + FMA machines. Sixteen 256-bit registers cannot hold the 8×32 tile, so it runs
    /// as four 4×16 sub-tiles (8 accumulators, 2 B loads and 4 broadcasts per step), the two row halves of one
    /// column half back to back so that half of the B̃ panel is read from L1 the second time.
    /// </summary>
    public static void Avx2(float* a, float* b, int kc, float* c, long ldc, bool accumulate)
    {
        SubTile4x16(a, b, kc, c, ldc, accumulate);
        SubTile4x16(a + 4, b, kc, c + 4 * ldc, ldc, accumulate);
        SubTile4x16(a, b + 16, kc, c + 16, ldc, accumulate);
        SubTile4x16(a + 4, b + 16, kc, c + 4 * ldc + 16, ldc, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SubTile4x16(float* a, float* b, int kc, float* c, long ldc, bool accumulate)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++, a += MR, b += NR)
        {
            Vector256<float> b0 = Avx.LoadVector256(b), b1 = Avx.LoadVector256(b + 8);
            Vector256<float> ai = Avx.BroadcastScalarToVector256(a);
            c00 = Fma.MultiplyAdd(ai, b0, c00);
            c01 = Fma.MultiplyAdd(ai, b1, c01);
            ai = Avx.BroadcastScalarToVector256(a + 1);
            c10 = Fma.MultiplyAdd(ai, b0, c10);
            c11 = Fma.MultiplyAdd(ai, b1, c11);
            ai = Avx.BroadcastScalarToVector256(a + 2);
            c20 = Fma.MultiplyAdd(ai, b0, c20);
            c21 = Fma.MultiplyAdd(ai, b1, c21);
            ai = Avx.BroadcastScalarToVector256(a + 3);
            c30 = Fma.MultiplyAdd(ai, b0, c30);
            c31 = Fma.MultiplyAdd(ai, b1, c31);
        }
        if (accumulate)
        {
            c00 += Vector256.Load(c + 0 * ldc); c01 += Vector256.Load(c + 0 * ldc + 8);
            c10 += Vector256.Load(c + 1 * ldc); c11 += Vector256.Load(c + 1 * ldc + 8);
            c20 += Vector256.Load(c + 2 * ldc); c21 += Vector256.Load(c + 2 * ldc + 8);
            c30 += Vector256.Load(c + 3 * ldc); c31 += Vector256.Load(c + 3 * ldc + 8);
        }
        c00.Store(c + 0 * ldc); c01.Store(c + 0 * ldc + 8);
        c10.Store(c + 1 * ldc); c11.Store(c + 1 * ldc + 8);
        c20.Store(c + 2 * ldc); c21.Store(c + 2 * ldc + 8);
        c30.Store(c + 3 * ldc); c31.Store(c + 3 * ldc + 8);
    }
}
