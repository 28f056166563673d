using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Sora.Kernels.Cpu;

/// <summary>
/// Flash attention: per (sequence, head), K and V are packed once as micro-kernel panels; query blocks run
/// in parallel, each streaming key blocks with an online softmax (running max and sum per query row), so
/// the full score matrix never exists. Q·Kᵀ and P·V both go through <see cref="MicroKernel"/>.
/// </summary>
internal static unsafe class CpuAttention
{
    private const int BQ = MicroKernel.MR * 8;
    private const int BK = 256;
    private const int NR = MicroKernel.NR;

    public static void Run(CpuBackend backend, AttentionPlan plan, float* q, long ldq, float* k, long ldk, float* v, long ldv, float* o, long ldo, int nq, int h, int d)
    {
        int maxValid = 0;
        for (int b = 0; b < plan.Count; b++) maxValid = Math.Max(maxValid, plan.ValidKeys[b]);
        int dPanels = (d + NR - 1) / NR;
        long kLen = (long)BlockedGemm.RoundUp(Math.Max(1, maxValid), NR) * d;
        long vLen = (long)Math.Max(1, maxValid) * dPanels * NR;
        float* kp = (float*)NativeMemory.AlignedAlloc((nuint)kLen * 4, 64);
        float* vp = (float*)NativeMemory.AlignedAlloc((nuint)vLen * 4, 64);
        try
        {
            for (int b = 0; b < plan.Count; b++)
            {
                int q0 = plan.QueryOffsets[b], rows = plan.QueryOffsets[b + 1] - q0, k0 = plan.KeyOffsets[b], valid = plan.ValidKeys[b];
                if (rows == 0) continue;
                for (int head = 0; head < h; head++)
                {
                    if (valid == 0)
                    {
                        for (int i = 0; i < rows; i++) new Span<float>(o + (q0 + i) * ldo + head * d, d).Clear();
                        continue;
                    }
                    PackKeys(k + k0 * ldk + head * d, ldk, valid, d, kp);
                    PackValues(v + k0 * ldv + head * d, ldv, valid, d, vp);
                    var job = new HeadJob(plan, head, q + q0 * ldq + head * d, ldq, o + q0 * ldo + head * d, ldo, kp, vp, valid, d);
                    int blocks = (rows + BQ - 1) / BQ;
                    backend.For(blocks, blk => job.Block(blk * BQ, Math.Min(BQ, rows - blk * BQ)));
                }
            }
        }
        finally
        {
            NativeMemory.AlignedFree(kp);
            NativeMemory.AlignedFree(vp);
        }
    }

    /// <summary>Kᵀ as B̃ panels: panel of keys j..j+32 is [d][32], keys past the end zero.</summary>
    private static void PackKeys(float* k, long ldk, int keys, int d, float* dst)
    {
        for (int j0 = 0; j0 < keys; j0 += NR)
        {
            float* panel = dst + (long)j0 * d;
            int nr = Math.Min(NR, keys - j0);
            for (int j = 0; j < nr; j++)
            {
                float* src = k + (j0 + j) * ldk;
                for (int p = 0; p < d; p++) panel[p * NR + j] = src[p];
            }
            for (int j = nr; j < NR; j++)
                for (int p = 0; p < d; p++) panel[p * NR + j] = 0;
        }
    }

    /// <summary>V as B̃ panels over head_dim: panel c is [keys][32] holding columns 32c..32c+32, zero past d.</summary>
    private static void PackValues(float* v, long ldv, int keys, int d, float* dst)
    {
        for (int c0 = 0, c = 0; c0 < d; c0 += NR, c++)
        {
            float* panel = dst + (long)c * keys * NR;
            int width = Math.Min(NR, d - c0);
            for (int j = 0; j < keys; j++)
            {
                float* src = v + j * ldv + c0;
                float* row = panel + (long)j * NR;
                Buffer.MemoryCopy(src, row, width * 4L, width * 4L);
                if (width < NR) new Span<float>(row + width, NR - width).Clear();
            }
        }
    }

    /// <summary>One head of one sequence: everything a query block needs.</summary>
    private sealed class HeadJob(AttentionPlan plan, int head, float* q, long ldq, float* o, long ldo, float* kp, float* vp, int keys, int d)
    {
        [ThreadStatic] private static float[]? t_scratch;

        public void Block(int i0, int bq)
        {
            const int MR = MicroKernel.MR;
            int dPanels = (d + NR - 1) / NR;
            int accWidth = dPanels * NR;
            long need = (long)BQ * d + (long)BQ * BK + (long)BQ * BK + (long)BQ * accWidth + 2L * BQ + 64;
            if (t_scratch is null || t_scratch.Length < need) t_scratch = GC.AllocateUninitializedArray<float>((int)need, pinned: true);
            fixed (float* scratch = t_scratch)
            {
                float* qa = Align(scratch);
                float* s = qa + BQ * d;
                float* pa = s + BQ * BK;
                float* acc = pa + BQ * BK;
                float* rowMax = acc + BQ * accWidth;
                float* rowSum = rowMax + BQ;
                new RowsPackA(q, ldq).Pack(i0, bq, 0, d, qa);
                new Span<float>(acc, BQ * accWidth).Clear();
                new Span<float>(rowMax, bq).Fill(float.NegativeInfinity);
                new Span<float>(rowSum, bq).Clear();
                float[]? bias = plan.Bias;
                for (int j0 = 0; j0 < keys; j0 += BK)
                {
                    int bk = Math.Min(BK, keys - j0);
                    // S = Q·Kᵀ for this key block, row-major [bq][BK].
                    for (int jr = 0; jr < bk; jr += NR)
                        for (int ir = 0; ir < bq; ir += MR)
                            MicroKernel.Run(qa + ir * d, kp + (long)(j0 + jr) * d, d, s + ir * BK + jr, BK, Math.Min(MR, bq - ir), Math.Min(NR, bk - jr), false);
                    // Online softmax: rescale what was accumulated when the running max grows.
                    for (int i = 0; i < bq; i++)
                    {
                        var row = new Span<float>(s + i * BK, bk);
                        TensorPrimitives.Multiply(row, plan.Scale, row);
                        if (bias is not null)
                        {
                            // bias[head, (j − i) + center] is contiguous in j.
                            int at = head * plan.BiasWidth + j0 - (i0 + i) + plan.BiasCenter;
                            TensorPrimitives.Add(row, bias.AsSpan(at, bk), row);
                        }
                        float mx = TensorPrimitives.Max((ReadOnlySpan<float>)row);
                        float mNew = MathF.Max(rowMax[i], mx);
                        float corr = MathF.Exp(rowMax[i] - mNew);
                        rowMax[i] = mNew;
                        TensorPrimitives.Subtract(row, mNew, row);
                        TensorPrimitives.Exp(row, row);
                        rowSum[i] = rowSum[i] * corr + TensorPrimitives.Sum((ReadOnlySpan<float>)row);
                        if (corr != 1f)
                        {
                            var accRow = new Span<float>(acc + i * accWidth, accWidth);
                            TensorPrimitives.Multiply(accRow, corr, accRow);
                        }
                    }
                    new RowsPackA(s, BK).Pack(0, bq, 0, bk, pa);
                    // acc += P·V for this key block.
                    for (int c = 0; c < dPanels; c++)
                    {
                        float* vpanel = vp + ((long)c * keys + j0) * NR;
                        for (int ir = 0; ir < bq; ir += MR)
                            MicroKernel.Run(pa + ir * bk, vpanel, bk, acc + ir * accWidth + c * NR, accWidth, Math.Min(MR, bq - ir), NR, true);
                    }
                }
                for (int i = 0; i < bq; i++)
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(acc + i * accWidth, d), 1f / rowSum[i], new Span<float>(o + (i0 + i) * ldo, d));
            }
        }

        private static float* Align(float* p) => (float*)(((nint)p + 63) & ~(nint)63);
    }
}
