namespace Sora.Kernels.Cpu;

/// <summary>Softmax attention one (query, head) at a time: scores, max-shifted exponentials, weighted sum of values.</summary>
internal static unsafe class CpuAttention
{
    public static void Run(CpuBackend backend, AttentionPlan plan, float* q, long ldq, float* k, long ldk, float* v, long ldv, float* o, long ldo, int nq, int h, int d)
    {
        for (int b = 0; b < plan.Count; b++)
        {
            int q0 = plan.QueryOffsets[b], q1 = plan.QueryOffsets[b + 1], k0 = plan.KeyOffsets[b], valid = plan.ValidKeys[b];
            backend.ForRanges((long)(q1 - q0) * h, 4, (s, e) =>
            {
                var scores = new float[Math.Max(1, valid)];
                fixed (float* sc = scores)
                    for (long item = s; item < e; item++)
                    {
                        int i = (int)(item / h), head = (int)(item % h);
                        float* qi = q + (q0 + i) * ldq + head * d;
                        float* oi = o + (q0 + i) * ldo + head * d;
                        new Span<float>(oi, d).Clear();
                        if (valid == 0) continue;
                        float max = float.NegativeInfinity;
                        for (int j = 0; j < valid; j++)
                        {
                            float sj = plan.Scale * CpuVector.Dot(qi, k + (k0 + j) * ldk + head * d, d);
                            if (plan.Bias is not null) sj += plan.Bias[head * plan.BiasWidth + (j - i) + plan.BiasCenter];
                            sc[j] = sj;
                            max = MathF.Max(max, sj);
                        }
                        float sum = 0;
                        for (int j = 0; j < valid; j++)
                        {
                            float p = MathF.Exp(sc[j] - max);
                            sum += p;
                            float* vj = v + (k0 + j) * ldv + head * d;
                            for (int c = 0; c < d; c++) oi[c] += p * vj[c];
                        }
                        float inv = 1f / sum;
                        for (int c = 0; c < d; c++) oi[c] *= inv;
                    }
            });
        }
    }
}
