using System.Numerics.Tensors;
using Sora.Runtime;
using Tensor = Sora.Runtime.Tensor;

namespace Sora.Kernels.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>x viewed as rows of its last dimension: (pointer, rows, width), contiguous F32.</summary>
    private static float* Rows(Tensor t, string name, out int rows, out int width)
    {
        float* p = HostArgs.F32Dense(t, name);
        if (t.Rank == 0) throw new ArgumentException($"{name} must have at least one dimension", name);
        width = t.Dim(-1);
        rows = width == 0 ? 0 : checked((int)(t.ElementCount / width));
        return p;
    }

    private static float* SameRows(Tensor y, string name, Tensor x)
    {
        float* p = HostArgs.F32Dense(y, name);
        if (!y.Shape.AsSpan().SequenceEqual(x.Shape))
            throw new ArgumentException($"{name} must have the shape of x {x.ShapeString}, got {y.ShapeString}", name);
        return p;
    }

    public void LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps, Tensor y)
    {
        float* xp = Rows(x, nameof(x), out int m, out int n);
        float* yp = SameRows(y, nameof(y), x);
        float[]? g = weight is null ? null : HostArgs.Vector(weight, nameof(weight), n);
        float[]? b = bias is null ? null : HostArgs.Vector(bias, nameof(bias), n);
        ForRanges(m, Math.Max(1, 16384 / Math.Max(1, n)), (r0, r1) =>
        {
            fixed (float* gp = g, bp = b)
                for (long r = r0; r < r1; r++)
                {
                    float* xr = xp + r * n;
                    CpuNorm.Normalize(xr, n, eps, gp, bp, yp + r * n);
                }
        });
    }

    public void AdaLnModulate(Tensor x, Tensor shift, Tensor scale, float eps, Tensor y)
    {
        float* xp = Rows(x, nameof(x), out int m, out int n);
        float* yp = SameRows(y, nameof(y), x);
        float[] sh = HostArgs.Vector(shift, nameof(shift), n);
        float[] sc = HostArgs.Vector(scale, nameof(scale), n);
        TensorPrimitives.Add(sc, 1f, sc);
        ForRanges(m, Math.Max(1, 16384 / Math.Max(1, n)), (r0, r1) =>
        {
            fixed (float* scp = sc, shp = sh)
                for (long r = r0; r < r1; r++)
                {
                    CpuNorm.Normalize(xp + r * n, n, eps, scp, shp, yp + r * n);
                }
        });
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y)
    {
        float* xp = Rows(x, nameof(x), out int m, out int n);
        float* yp = SameRows(y, nameof(y), x);
        float[] g = HostArgs.Vector(weight, nameof(weight), n);
        ForRanges(m, Math.Max(1, 16384 / Math.Max(1, n)), (r0, r1) =>
        {
            fixed (float* gp = g)
                for (long r = r0; r < r1; r++)
                {
                    float* xr = xp + r * n;
                    float inv = 1f / MathF.Sqrt(CpuVector.SumSquaredDeviation(xr, 0f, n) / n + eps);
                    CpuVector.Normalize(xr, 0f, inv, gp, null, yp + r * n, n);
                }
        });
    }

    public void ChannelRmsNorm(Tensor x, Tensor gamma, Tensor? beta, Tensor y)
    {
        float* xp = HostArgs.F32Dense(x, nameof(x));
        float* yp = SameRows(y, nameof(y), x);
        if (x.Rank < 2) throw new ArgumentException($"x must be [C, L...], got {x.ShapeString}", nameof(x));
        int c = x.Dim(0);
        long l = x.ElementCount / Math.Max(1, c);
        float[] g = HostArgs.Vector(gamma, nameof(gamma), c);
        float[]? b = beta is null ? null : HostArgs.Vector(beta, nameof(beta), c);
        float sqrtC = MathF.Sqrt(c);
        // Columns are independent: each range of positions sums squares over channels in a scratch row.
        ForRanges(l, 256, (p0, p1) =>
        {
            int len = (int)(p1 - p0);
            var inv = new float[len];
            var scaled = new float[len];
            fixed (float* iv = inv)
            {
                for (int ch = 0; ch < c; ch++)
                {
                    var row = new ReadOnlySpan<float>(xp + ch * l + p0, len);
                    TensorPrimitives.FusedMultiplyAdd(row, row, new ReadOnlySpan<float>(iv, len), new Span<float>(iv, len));
                }
                for (int i = 0; i < len; i++) iv[i] = sqrtC / MathF.Max(MathF.Sqrt(iv[i]), 1e-12f);
                // One pass over x and y per channel: y = x · (inv · γ) + β, the short factor row staying in L1.
                for (int ch = 0; ch < c; ch++)
                {
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(iv, len), g[ch], scaled);
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(xp + ch * l + p0, len), scaled, b is null ? 0f : b[ch],
                        new Span<float>(yp + ch * l + p0, len));
                }
            }
        });
    }

    public void GatedResidual(Tensor x, Tensor y, Tensor gate)
    {
        float* xp = Rows(x, nameof(x), out int m, out int n);
        float* yp = SameRows(y, nameof(y), x);
        float[] g = HostArgs.Vector(gate, nameof(gate), n);
        ForRanges(m, Math.Max(1, 16384 / Math.Max(1, n)), (r0, r1) =>
        {
            fixed (float* gp = g)
                for (long r = r0; r < r1; r++)
                    CpuVector.MulAdd(yp + r * n, gp, xp + r * n, xp + r * n, n);
        });
    }
}

/// <summary>Row statistics in float32, guarded against cancellation.</summary>
internal static unsafe class CpuNorm
{
    /// <summary>y = (x − mean) / sqrt(var + eps) · scale + shift, biased variance; scale/shift optional.</summary>
    /// <remarks>
    /// One pass gathers Σ(x − x₀) and Σ(x − x₀)²; var = E[(x − x₀)²] − E[x − x₀]² is exact to a few ulps while
    /// the second term is at most half the first. Otherwise (x₀ an outlier far from the mean) the row is
    /// measured again with the two-pass formula.
    /// </remarks>
    public static void Normalize(float* x, int n, float eps, float* scale, float* shift, float* y)
    {
        float x0 = x[0];
        var (s1, s2) = CpuVector.ShiftedMoments(x, x0, n);
        float m1 = s1 / n, m2 = s2 / n;
        float mean = x0 + m1, var;
        if (m1 * m1 <= 0.5f * m2) var = m2 - m1 * m1;
        else
        {
            mean = CpuVector.Sum(x, n) / n;
            var = CpuVector.SumSquaredDeviation(x, mean, n) / n;
        }
        CpuVector.Normalize(x, mean, 1f / MathF.Sqrt(var + eps), scale, shift, y, n);
    }
}
