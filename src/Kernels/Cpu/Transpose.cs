using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sora.Kernels.Cpu;

/// <summary>Transposing copies used by the packers (8×8 blocks in registers where AVX is available).</summary>
internal static unsafe class Transpose
{
    /// <summary>dst[p·ldd + i] = src[i·lds + p] for i &lt; rows, p &lt; cols.</summary>
    public static void Block(float* src, long lds, int rows, int cols, float* dst, long ldd)
    {
        int i = 0;
        if (Avx.IsSupported)
            for (; i + 8 <= rows; i += 8)
            {
                int p = 0;
                for (; p + 8 <= cols; p += 8) Avx8x8(src + i * lds + p, lds, dst + p * ldd + i, ldd);
                for (; p < cols; p++)
                    for (int r = i; r < i + 8; r++) dst[p * ldd + r] = src[r * lds + p];
            }
        for (; i < rows; i++)
        {
            float* s = src + i * lds;
            for (int p = 0; p < cols; p++) dst[p * ldd + i] = s[p];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Avx8x8(float* src, long lds, float* dst, long ldd)
    {
        var r0 = Avx.LoadVector256(src);
        var r1 = Avx.LoadVector256(src + lds);
        var r2 = Avx.LoadVector256(src + 2 * lds);
        var r3 = Avx.LoadVector256(src + 3 * lds);
        var r4 = Avx.LoadVector256(src + 4 * lds);
        var r5 = Avx.LoadVector256(src + 5 * lds);
        var r6 = Avx.LoadVector256(src + 6 * lds);
        var r7 = Avx.LoadVector256(src + 7 * lds);
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7);
        var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44);
        var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44);
        var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44);
        var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44);
        var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }
}
