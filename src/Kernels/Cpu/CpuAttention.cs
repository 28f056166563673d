using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Sora.Kernels.Cpu;

/// <summary>
/// Flash attention: per (sequence, head), K and V are packed once as micro-kernel panels; query blocks run
/// in parallel, each streaming key blocks with an online softmax (running max and sum per query row), so
/// the full score matrix never exists. Q·Kᵀ and P·V both go through <see cref="MicroKernel"/>.
/// </summary>
/// <remarks>
/// Without a relative bias, a sequence whose last r visible keys are one repeated (key, value) row — the zero padding
/// of a text prompt after its projection — is attended over its distinct rows with the repeated one counted r times:
/// softmax weights e^(s_j) of r equal scores sum to e^(s + ln r), so that key's score gets + ln r. The result equals
/// attention over all keys up to rounding, at the cost of the distinct keys only (a 512-row prompt of 10 tokens: 11).
/// </remarks>
internal static unsafe class CpuAttention
{
    private const int BQ = MicroKernel.MR * 8;
    private const int BK = 256;
    private const int NR = MicroKernel.NR;

    public static void Run(CpuBackend backend, AttentionPlan plan, float* q, long ldq, float* k, long ldk, float* v, long ldv, float* o, long ldo, int h, int d)
    {
        var shortSequences = new List<int>();
        var repeats = KeyRepeats(backend, plan, k, ldk, v, ldv, h * d);
        var distinct = new int[plan.Count];
        var logRepeats = new float[plan.Count];
        for (int b = 0; b < plan.Count; b++)
        {
            int q0 = plan.QueryOffsets[b], rows = plan.QueryOffsets[b + 1] - q0, k0 = plan.KeyOffsets[b], valid = plan.ValidKeys[b];
            if (rows == 0) continue;
            if (valid == 0)
            {
                for (int i = 0; i < rows; i++) new Span<float>(o + (q0 + i) * ldo, h * d).Clear(); // heads are dense in a row
                continue;
            }
            distinct[b] = valid = valid - repeats[b] + 1;
            logRepeats[b] = MathF.Log(repeats[b]);
            int blocks = (rows + BQ - 1) / BQ;
            if (blocks < 2 * backend.Threads)
            {
                shortSequences.Add(b);
                continue;
            }
            // Long sequences: heads one after another, query blocks in parallel over one K/V packing.
            using var packs = new HeadPacks(valid, d);
            for (int head = 0; head < h; head++)
            {
                packs.Pack(k + k0 * ldk + head * d, ldk, v + k0 * ldv + head * d, ldv);
                var job = new HeadJob(plan, head, q + q0 * ldq + head * d, ldq, o + q0 * ldo + head * d, ldo, packs.Keys, packs.Values, valid, logRepeats[b], d);
                backend.For(blocks, blk => job.Block(blk * BQ, Math.Min(BQ, rows - blk * BQ)));
            }
        }
        if (shortSequences.Count == 0) return;
        // Short sequences (the text encoder, packed batches of small clips): every (sequence, head) pair in one
        // parallel loop, each packing its own K/V, so many short sequences cost one dispatch, not one each.
        backend.For(shortSequences.Count * h, task =>
        {
            int b = shortSequences[task / h], head = task % h;
            int q0 = plan.QueryOffsets[b], rows = plan.QueryOffsets[b + 1] - q0, k0 = plan.KeyOffsets[b], valid = distinct[b];
            using var packs = new HeadPacks(valid, d);
            packs.Pack(k + k0 * ldk + head * d, ldk, v + k0 * ldv + head * d, ldv);
            var job = new HeadJob(plan, head, q + q0 * ldq + head * d, ldq, o + q0 * ldo + head * d, ldo, packs.Keys, packs.Values, valid, logRepeats[b], d);
            for (int blk = 0; blk * BQ < rows; blk++) job.Block(blk * BQ, Math.Min(BQ, rows - blk * BQ));
        });
    }

    /// <summary>Per sequence, the trailing repeats of its last visible key (see <see cref="TrailingRepeats"/>; 1 under a relative bias), sequences in parallel.</summary>
    private static int[] KeyRepeats(CpuBackend backend, AttentionPlan plan, float* k, long ldk, float* v, long ldv, int width)
    {
        var repeats = new int[plan.Count];
        Array.Fill(repeats, 1);
        if (plan.Bias is not null) return repeats;
        void Count(int b)
        {
            int k0 = plan.KeyOffsets[b], valid = plan.ValidKeys[b];
            if (valid > 1) repeats[b] = TrailingRepeats(k + k0 * ldk, ldk, v + k0 * ldv, ldv, valid, width);
        }
        if (plan.Count == 1) Count(0);
        else backend.For(plan.Count, Count);
        return repeats;
    }

    /// <summary>
    /// How many of the first <paramref name="keys"/> rows, counted back from the last, hold exactly (bit for bit) the
    /// last row's keys and values over all heads: at least 1.
    /// </summary>
    private static int TrailingRepeats(float* k, long ldk, float* v, long ldv, int keys, int width)
    {
        var lastKey = new ReadOnlySpan<int>(k + (keys - 1) * ldk, width);
        var lastValue = new ReadOnlySpan<int>(v + (keys - 1) * ldv, width);
        int repeats = 1;
        while (repeats < keys
            && new ReadOnlySpan<int>(k + (keys - 1 - repeats) * ldk, width).SequenceEqual(lastKey)
            && new ReadOnlySpan<int>(v + (keys - 1 - repeats) * ldv, width).SequenceEqual(lastValue))
            repeats++;
        return repeats;
    }

    /// <summary>One head's keys and values packed as micro-kernel panels (native, 64-byte aligned).</summary>
    private sealed class HeadPacks : IDisposable
    {
        private readonly int _keys, _d;

        public HeadPacks(int keys, int d)
        {
            _keys = keys;
            _d = d;
            long kLen = (long)BlockedGemm.RoundUp(keys, NR) * d;
            long vLen = (long)keys * BlockedGemm.RoundUp(d, NR);
            Keys = (float*)NativeMemory.AlignedAlloc((nuint)kLen * 4, 64);
            Values = (float*)NativeMemory.AlignedAlloc((nuint)vLen * 4, 64);
        }

        public float* Keys { get; }
        public float* Values { get; }

        public void Pack(float* k, long ldk, float* v, long ldv)
        {
            PackKeys(k, ldk, _keys, _d, Keys);
            PackValues(v, ldv, _keys, _d, Values);
        }

        public void Dispose()
        {
            NativeMemory.AlignedFree(Keys);
            NativeMemory.AlignedFree(Values);
        }
    }

    /// <summary>Kᵀ as B̃ panels: panel of keys j..j+32 is [d][32], keys past the end zero.</summary>
    private static void PackKeys(float* k, long ldk, int keys, int d, float* dst)
    {
        for (int j0 = 0; j0 < keys; j0 += NR)
        {
            float* panel = dst + (long)j0 * d;
            int nr = Math.Min(NR, keys - j0);
            Transpose.Block(k + j0 * ldk, ldk, nr, d, panel, NR);
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

    /// <summary>One head of one sequence: everything a query block needs; the last key stands for e^logRepeats equal ones.</summary>
    private sealed class HeadJob(AttentionPlan plan, int head, float* q, long ldq, float* o, long ldo, float* kp, float* vp, int keys, float logRepeats, int d)
    {
        [ThreadStatic] private static float[]? t_scratch;

        public void Block(int i0, int bq)
        {
            const int MR = MicroKernel.MR;
            int dPanels = (d + NR - 1) / NR;
            int accWidth = dPanels * NR;
            long need = (long)BQ * d + (long)BQ * BK + (long)BQ * BK + (long)BQ * accWidth + 2L * BQ + 64;
            if (t_scratch is null || t_scratch.Length < need) t_scratch = GC.AllocateUninitializedArray<float>((int)need, pinned: true);
            fixed (float* scratch = t_scratch, biasBase = plan.Bias)
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
                        float* row = s + i * BK;
                        // bias[head, (j − i) + center] is contiguous in j.
                        float* biasRow = biasBase == null ? null : biasBase + head * plan.BiasWidth + j0 - (i0 + i) + plan.BiasCenter;
                        float mx = CpuVector.ScaleMax(row, plan.Scale, biasRow, bk);
                        if (logRepeats != 0 && j0 + bk == keys)
                        {
                            row[bk - 1] += logRepeats;
                            mx = MathF.Max(mx, row[bk - 1]);
                        }
                        float mNew = MathF.Max(rowMax[i], mx);
                        float corr = MathF.Exp(rowMax[i] - mNew);
                        rowMax[i] = mNew;
                        rowSum[i] = rowSum[i] * corr + CpuVector.ExpShiftSum(row, mNew, bk);
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
