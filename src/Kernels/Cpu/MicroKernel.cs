using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sora.Kernels.Cpu;

/// <summary>
/// The register-blocked inner product of every matrix op: C[mr×nr] (+)= Ã·B̃ with Ã packed as kc steps of
/// MR row values and B̃ as kc steps of NR column values (both zero-padded to full tiles).
/// </summary>
internal static unsafe partial class MicroKernel
{
    /// <summary>A partial tile (mr ≤ MR, nr ≤ NR): full tile into scratch, then the valid corner into C.</summary>
    public static void Run(float* a, float* b, int kc, float* c, long ldc, int mr, int nr, bool accumulate)
    {
        if (mr == MR && nr == NR && Vectorised(a, b, kc, c, ldc, accumulate)) return;
        float* tile = stackalloc float[MR * NR];
        if (!Vectorised(a, b, kc, tile, NR, false)) Portable(a, b, kc, tile);
        for (int i = 0; i < mr; i++)
        {
            float* ci = c + i * ldc;
            float* ti = tile + i * NR;
            if (accumulate) for (int j = 0; j < nr; j++) ci[j] += ti[j];
            else for (int j = 0; j < nr; j++) ci[j] = ti[j];
        }
    }

    /// <summary>The register-tile kernel this CPU has (AVX-512, else AVX2 + FMA); false where it has neither.</summary>
    private static bool Vectorised(float* a, float* b, int kc, float* c, long ldc, bool accumulate)
    {
        if (Avx512F.IsSupported) Avx512(a, b, kc, c, ldc, accumulate);
        else if (Fma.IsSupported) Avx2(a, b, kc, c, ldc, accumulate);
        else return false;
        return true;
    }

    /// <summary>Same product for machines without AVX-512 or FMA (256-bit vectors through a tile in memory).</summary>
    private static void Portable(float* a, float* b, int kc, float* tile)
    {
        new Span<float>(tile, MR * NR).Clear();
        for (int p = 0; p < kc; p++, a += MR, b += NR)
            for (int i = 0; i < MR; i++)
            {
                var ai = Vector256.Create(a[i]);
                float* ti = tile + i * NR;
                for (int j = 0; j < NR; j += 8)
                    Vector256.FusedMultiplyAdd(ai, Vector256.Load(b + j), Vector256.Load(ti + j)).Store(ti + j);
            }
    }
}
