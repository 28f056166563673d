using Sora.Runtime;
using Tensor = Sora.Runtime.Tensor;

namespace Sora.Kernels.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void ApplyRope(Tensor x, Tensor cos, Tensor sin)
    {
        HostArgs.RequireRank(x, nameof(x), 3);
        int rows = x.Dim(0), h = x.Dim(1), d = x.Dim(2);
        if (d % 2 != 0) throw new ArgumentException($"x head_dim {d} must be even for rotary pairs", nameof(x));
        float* xp = Heads(x, nameof(x), rows, h, d, out long ldx);
        HostArgs.RequireRank(cos, nameof(cos), 2);
        int s = cos.Dim(0);
        HostArgs.RequireShape(cos, nameof(cos), s, d / 2);
        HostArgs.RequireShape(sin, nameof(sin), s, d / 2);
        if (s == 0 || rows % s != 0) throw new ArgumentException($"x has {rows} rows, not a multiple of the {s} rows of cos", nameof(cos));
        float[] cf = cos.ToFloatArray(), sf = sin.ToFloatArray();
        ForRanges(rows, Math.Max(1, 8192 / Math.Max(1, h * d)), (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                int pos = (int)(r % s);
                for (int head = 0; head < h; head++)
                {
                    float* v = xp + r * ldx + head * d;
                    for (int i = 0; i < d / 2; i++)
                    {
                        float c = cf[pos * (d / 2) + i], sn = sf[pos * (d / 2) + i];
                        float a = v[2 * i], b = v[2 * i + 1];
                        v[2 * i] = a * c - b * sn;
                        v[2 * i + 1] = a * sn + b * c;
                    }
                }
            }
        });
    }

    /// <summary>A [rows, H, D] F32 tensor whose heads and head_dim are dense; rows may be strided.</summary>
    private static float* Heads(Tensor t, string name, int rows, int h, int d, out long rowStride)
    {
        float* p = HostArgs.F32(t, name);
        HostArgs.RequireShape(t, name, rows, h, d);
        if ((d > 1 && t.Strides[2] != 1) || (h > 1 && t.Strides[1] != d))
            throw new ArgumentException($"{name} {t} must have dense heads and head_dim, got strides [{string.Join(", ", t.Strides)}]", name);
        rowStride = rows > 1 ? t.Strides[0] : (long)h * d;
        if (rows > 1 && rowStride < (long)h * d)
            throw new ArgumentException($"{name} {t} has row stride {rowStride} smaller than H·D = {h * d}", name);
        return p;
    }

    public void Upsample2x(Tensor x, Tensor y)
    {
        float* xp = HostArgs.F32Dense(x, nameof(x));
        HostArgs.RequireRank(x, nameof(x), 4);
        int c = x.Dim(0), t = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        float* yp = HostArgs.F32Dense(y, nameof(y));
        HostArgs.RequireShape(y, nameof(y), c, t, 2 * h, 2 * w);
        For(c * t, plane =>
        {
            float* src = xp + (long)plane * h * w;
            float* dst = yp + (long)plane * 4 * h * w;
            for (int i = 0; i < h; i++)
            {
                float* row = dst + (long)2 * i * 2 * w;
                for (int j = 0; j < w; j++) row[2 * j] = row[2 * j + 1] = src[i * w + j];
                Buffer.MemoryCopy(row, row + 2 * w, 8L * w, 8L * w);
            }
        });
    }

    public void TimestepEmbedding(float[] timesteps, int dim, bool flipSinToCos, float downscaleFreqShift, Tensor y)
    {
        ArgumentNullException.ThrowIfNull(timesteps);
        ArgumentOutOfRangeException.ThrowIfNegative(dim);
        float* yp = HostArgs.F32Dense(y, nameof(y));
        HostArgs.RequireShape(y, nameof(y), timesteps.Length, dim);
        int half = dim / 2;
        if (half > 0 && half - downscaleFreqShift == 0) throw new ArgumentException("dim/2 − downscaleFreqShift must not be 0", nameof(downscaleFreqShift));
        for (int b = 0; b < timesteps.Length; b++)
        {
            float* row = yp + (long)b * dim;
            for (int i = 0; i < half; i++)
            {
                // diffusers get_timestep_embedding: exp(−ln(10000)·i/(half − shift)), angle in float32.
                float freq = MathF.Exp(-MathF.Log(10000f) * i / (half - downscaleFreqShift));
                float angle = timesteps[b] * freq;
                float sn = MathF.Sin(angle), cs = MathF.Cos(angle);
                row[i] = flipSinToCos ? cs : sn;
                row[half + i] = flipSinToCos ? sn : cs;
            }
            if (dim % 2 == 1) row[dim - 1] = 0;
        }
    }

    public void Embedding(int[] ids, Tensor table, Tensor y)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var host = HostArgs.Host(table, nameof(table));
        HostArgs.RequireRank(table, nameof(table), 2);
        HostArgs.RequireContiguous(table, nameof(table));
        int v = table.Dim(0), d = table.Dim(1);
        float* yp = HostArgs.F32Dense(y, nameof(y));
        HostArgs.RequireShape(y, nameof(y), ids.Length, d);
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)v)
                throw new ArgumentOutOfRangeException(nameof(ids), $"ids[{i}] = {ids[i]} is outside the table's vocabulary [0, {v})");
        For(ids.Length, i => HostArgs.ToFloat(host, table.Offset + (long)ids[i] * d, d, yp + (long)i * d));
    }

    public void Patchify(Tensor x, int pt, int ph, int pw, Tensor y)
    {
        float* xp = HostArgs.F32Dense(x, nameof(x));
        HostArgs.RequireRank(x, nameof(x), 4);
        int c = x.Dim(0), t = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        CheckPatch(pt, ph, pw, t, h, w, nameof(x));
        int tt = t / pt, hh = h / ph, ww = w / pw, f = c * pt * ph * pw;
        float* yp = HostArgs.F32Dense(y, nameof(y));
        HostArgs.RequireShape(y, nameof(y), tt * hh * ww, f);
        For(tt * hh, th =>
        {
            int ti = th / hh, hi = th % hh;
            for (int wi = 0; wi < ww; wi++)
            {
                float* dst = yp + ((long)th * ww + wi) * f;
                int e = 0;
                for (int ch = 0; ch < c; ch++)
                    for (int kt = 0; kt < pt; kt++)
                        for (int kh = 0; kh < ph; kh++)
                            for (int kw = 0; kw < pw; kw++)
                                dst[e++] = xp[(((long)ch * t + ti * pt + kt) * h + hi * ph + kh) * w + wi * pw + kw];
            }
        });
    }

    public void Unpatchify(Tensor x, int pt, int ph, int pw, Tensor y)
    {
        float* yp = HostArgs.F32Dense(y, nameof(y));
        HostArgs.RequireRank(y, nameof(y), 4);
        int c = y.Dim(0), t = y.Dim(1), h = y.Dim(2), w = y.Dim(3);
        CheckPatch(pt, ph, pw, t, h, w, nameof(y));
        int tt = t / pt, hh = h / ph, ww = w / pw, f = c * pt * ph * pw;
        float* xp = HostArgs.F32Dense(x, nameof(x));
        HostArgs.RequireShape(x, nameof(x), tt * hh * ww, f);
        For(tt * hh, th =>
        {
            int ti = th / hh, hi = th % hh;
            for (int wi = 0; wi < ww; wi++)
            {
                float* src = xp + ((long)th * ww + wi) * f;
                int e = 0;
                for (int kt = 0; kt < pt; kt++)
                    for (int kh = 0; kh < ph; kh++)
                        for (int kw = 0; kw < pw; kw++)
                            for (int ch = 0; ch < c; ch++)
                                yp[(((long)ch * t + ti * pt + kt) * h + hi * ph + kh) * w + wi * pw + kw] = src[e++];
            }
        });
    }

    private static void CheckPatch(int pt, int ph, int pw, int t, int h, int w, string name)
    {
        if (pt <= 0 || ph <= 0 || pw <= 0) throw new ArgumentOutOfRangeException(nameof(pt), $"patch ({pt}, {ph}, {pw}) must be positive");
        if (t % pt != 0 || h % ph != 0 || w % pw != 0)
            throw new ArgumentException($"{name} [.., {t}, {h}, {w}] is not divisible by the patch ({pt}, {ph}, {pw})", name);
    }
}
