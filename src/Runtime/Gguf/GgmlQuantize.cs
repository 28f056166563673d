using System.Buffers.Binary;

namespace Sora.Runtime.Gguf;

/// <summary>
/// ggml's reference quantisers (ggml-quants.c quantize_row_*_ref, the path llama-quantize takes without an importance
/// matrix) for F32, F16, BF16, Q8_0, Q4_K, Q5_K and Q6_K, in ggml's float32 operation order, so a row quantises to
/// the bytes ggml writes. Each block is quantised on its own, so any run of whole blocks can be done at a time.
/// </summary>
public static class GgmlQuantize
{
    private const float GroupMaxEps = 1e-15f;

    public static bool CanQuantize(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16
        or GgmlType.Q8_0 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>Encodes <paramref name="src"/> (whole blocks) as <paramref name="type"/> into <paramref name="dst"/> (exactly its byte count).</summary>
    public static void Blocks(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        if (!CanQuantize(type)) throw new NotSupportedException($"quantising to {GgmlTypes.Name(type)} is not supported (f32, f16, bf16, q8_0, q4_K, q5_K, q6_K are)");
        long bytes = GgmlTypes.ByteCount(type, src.Length);
        if (bytes < 0) throw new ArgumentException($"{src.Length} values are not whole {GgmlTypes.Name(type)} blocks of {GgmlTypes.BlockSize(type)}", nameof(src));
        if (dst.Length != bytes) throw new ArgumentException($"{src.Length} values of {GgmlTypes.Name(type)} take {bytes} bytes, dst holds {dst.Length}", nameof(dst));
        switch (type)
        {
            case GgmlType.F32:
                for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * i)..], src[i]);
                return;
            case GgmlType.F16:
                for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(dst[(2 * i)..], (Half)src[i]);
                return;
            case GgmlType.BF16:
                for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], BFloat16.FromFloat(src[i]));
                return;
        }
        int block = GgmlTypes.BlockSize(type), size = GgmlTypes.BlockBytes(type);
        for (int b = 0; b < src.Length / block; b++)
        {
            var x = src.Slice(b * block, block);
            var y = dst.Slice(b * size, size);
            switch (type)
            {
                case GgmlType.Q8_0: Q8_0(x, y); break;
                case GgmlType.Q4_K: Q4_K(x, y); break;
                case GgmlType.Q5_K: Q5_K(x, y); break;
                default: Q6_K(x, y); break;
            }
        }
    }

    /// <summary>Round to nearest, ties to even, by ggml's trick of adding 1.5·2^23 (valid for |x| ≤ 2^22).</summary>
    private static int NearestInt(float x) => (BitConverter.SingleToInt32Bits(x + 12582912f) & 0x007F_FFFF) - 0x0040_0000;

    private static void WriteHalf(Span<byte> y, int at, float v) => BinaryPrimitives.WriteHalfLittleEndian(y[at..], (Half)v);

    private static float ReadHalf(Span<byte> y, int at) => (float)BinaryPrimitives.ReadHalfLittleEndian(y[at..]);

    /// <summary>d = absmax / 127; q = round(x / d) (half away from zero, C's roundf).</summary>
    private static void Q8_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = Math.Max(amax, Math.Abs(x[j]));
        float d = amax / 127;
        float id = d != 0 ? 1.0f / d : 0.0f;
        WriteHalf(y, 0, d);
        for (int j = 0; j < 32; j++) y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    /// <summary>
    /// ggml's make_qkx2_quants: a scale and min for n values with levels 0..nmax, minimising the weighted error over
    /// nstep + 1 trial scales (rmin + rdelta·is + nmax) / (max - min) with a least-squares fit at each. Returns the
    /// scale and writes -min to <paramref name="theMin"/>.
    /// </summary>
    private static float MakeQkx2Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> l,
        out float theMin, Span<byte> laux, float rmin, float rdelta, int nstep)
    {
        float min = x[0], max = x[0];
        float sumW = weights[0], sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            l[..n].Clear();
            theMin = -min;
            return 0;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int li = NearestInt(iscale * (x[i] - min));
            l[i] = (byte)Math.Max(0, Math.Min(nmax, li));
            float diff = scale * l[i] + min - x[i];
            bestError += weights[i] * (diff * diff);
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int li = Math.Max(0, Math.Min(nmax, NearestInt(iscale * (x[i] - min))));
                laux[i] = (byte)li;
                float w = weights[i];
                sumL += w * li;
                sumL2 += w * li * li;
                sumXL += w * li * x[i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * laux[i] + thisMin - x[i];
                    curError += weights[i] * (diff * diff);
                }
                if (curError < bestError)
                {
                    laux[..n].CopyTo(l);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>
    /// The shared part of Q4_K and Q5_K: per group of 32 a scale and min from make_qkx2_quants with weights
    /// √(mean x²) + |x|, both quantised to six bits against the block's largest (d = max/63, dmin = maxmin/63) and
    /// packed as get_scale_min_k4 reads them; then the levels requantised against the rounded scales.
    /// </summary>
    private static void ScaledGroups(ReadOnlySpan<float> x, Span<byte> y, Span<byte> levels, int nmax, float rmin, float rdelta, int nstep)
    {
        Span<float> weights = stackalloc float[32], scales = stackalloc float[8], mins = stackalloc float[8];
        Span<byte> laux = stackalloc byte[32];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            var xg = x.Slice(32 * j, 32);
            float sumX2 = 0;
            for (int i = 0; i < 32; i++) sumX2 += xg[i] * xg[i];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int i = 0; i < 32; i++) weights[i] = avX + Math.Abs(xg[i]);
            scales[j] = MakeQkx2Quants(32, nmax, xg, weights, levels.Slice(32 * j, 32), out mins[j], laux, rmin, rdelta, nstep);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f, invMin = maxMin > 0 ? 63f / maxMin : 0f;
        var packed = y.Slice(4, 12);
        packed.Clear();
        for (int j = 0; j < 8; j++)
        {
            byte ls = Math.Min((byte)63, (byte)NearestInt(invScale * scales[j]));
            byte lm = Math.Min((byte)63, (byte)NearestInt(invMin * mins[j]));
            if (j < 4)
            {
                packed[j] = ls;
                packed[j + 4] = lm;
            }
            else
            {
                packed[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                packed[j - 4] |= (byte)((ls >> 4) << 6);
                packed[j] |= (byte)((lm >> 4) << 6);
            }
        }
        WriteHalf(y, 0, maxScale / 63f);
        WriteHalf(y, 2, maxMin / 63f);
        float dAll = ReadHalf(y, 0), minAll = ReadHalf(y, 2);
        for (int j = 0; j < 8; j++)
        {
            var (sc, m) = j < 4
                ? (packed[j] & 63, packed[j + 4] & 63)
                : ((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4), (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
            float d = dAll * sc;
            if (d == 0) continue;
            float dm = minAll * m;
            for (int i = 0; i < 32; i++) levels[32 * j + i] = (byte)Math.Max(0, Math.Min(nmax, NearestInt((x[32 * j + i] + dm) / d)));
        }
    }

    private static void Q4_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> levels = stackalloc byte[256];
        ScaledGroups(x, y, levels, 15, -1f, 0.1f, 20);
        var q = y.Slice(16, 128);
        for (int g = 0; g < 4; g++)
            for (int i = 0; i < 32; i++) q[32 * g + i] = (byte)(levels[64 * g + i] | (levels[64 * g + i + 32] << 4));
    }

    private static void Q5_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> levels = stackalloc byte[256];
        ScaledGroups(x, y, levels, 31, -0.5f, 0.1f, 15);
        var qh = y.Slice(16, 32);
        var ql = y.Slice(48, 128);
        qh.Clear();
        for (int g = 0; g < 4; g++)
        {
            byte m1 = (byte)(1 << (2 * g)), m2 = (byte)(2 << (2 * g));
            for (int i = 0; i < 32; i++)
            {
                int l1 = levels[64 * g + i], l2 = levels[64 * g + i + 32];
                if (l1 > 15) { l1 -= 16; qh[i] |= m1; }
                if (l2 > 15) { l2 -= 16; qh[i] |= m2; }
                ql[32 * g + i] = (byte)(l1 | (l2 << 4));
            }
        }
    }

    /// <summary>
    /// ggml's make_qx_quants with rmse_type 1 and no importance weights: levels -nmax..nmax-1 for 16 values, the
    /// scale fitted by weighted least squares (weights x²) over 19 trial scales -(nmax + 0.1·is) / max. Writes
    /// level + nmax to <paramref name="l"/>.
    /// </summary>
    private static float MakeQxQuants(int nmax, ReadOnlySpan<float> x, Span<byte> l)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float ax = Math.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            l[..x.Length].Clear();
            return 0;
        }
        float iscale = -nmax / max;
        float sumLX = 0, sumL2 = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int li = Math.Max(-nmax, Math.Min(nmax - 1, NearestInt(iscale * x[i])));
            l[i] = (byte)(li + nmax);
            float w = x[i] * x[i];
            sumLX += w * x[i] * li;
            sumL2 += w * li * li;
        }
        float scale = sumL2 != 0 ? sumLX / sumL2 : 0.0f;
        float best = scale * sumLX;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumLX = sumL2 = 0;
            for (int i = 0; i < x.Length; i++)
            {
                int li = Math.Max(-nmax, Math.Min(nmax - 1, NearestInt(iscale * x[i])));
                float w = x[i] * x[i];
                sumLX += w * x[i] * li;
                sumL2 += w * li * li;
            }
            if (sumL2 > 0 && sumLX * sumLX > best * sumL2)
            {
                for (int i = 0; i < x.Length; i++) l[i] = (byte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, NearestInt(iscale * x[i]))));
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }
        return scale;
    }

    /// <summary>16 groups of 16 with make_qx_quants scales, quantised to signed eight bits against the largest (d = -max/128).</summary>
    private static void Q6_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> levels = stackalloc byte[256];
        Span<float> scales = stackalloc float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (int g = 0; g < 16; g++)
        {
            scales[g] = MakeQxQuants(32, x.Slice(16 * g, 16), levels.Slice(16 * g, 16));
            float abs = Math.Abs(scales[g]);
            if (abs > maxAbsScale) { maxAbsScale = abs; maxScale = scales[g]; }
        }
        y.Clear();
        if (maxAbsScale < GroupMaxEps) return; // an all-zero block: d = 0 and zero levels
        float iscale = -128f / maxScale;
        WriteHalf(y, 208, 1 / iscale);
        var sc = y.Slice(192, 16);
        for (int g = 0; g < 16; g++) sc[g] = (byte)(sbyte)Math.Min(127, NearestInt(iscale * scales[g]));
        float dAll = ReadHalf(y, 208);
        for (int g = 0; g < 16; g++)
        {
            float d = dAll * (sbyte)sc[g];
            if (d == 0) continue;
            for (int i = 0; i < 16; i++) levels[16 * g + i] = (byte)(Math.Max(-32, Math.Min(31, NearestInt(x[16 * g + i] / d))) + 32);
        }
        var ql = y[..128];
        var qh = y.Slice(128, 64);
        for (int n = 0; n < 2; n++)
            for (int i = 0; i < 32; i++)
            {
                int j = 128 * n + i;
                int q1 = levels[j], q2 = levels[j + 32], q3 = levels[j + 64], q4 = levels[j + 96];
                ql[64 * n + i] = (byte)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[64 * n + i + 32] = (byte)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[32 * n + i] = (byte)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
    }
}
