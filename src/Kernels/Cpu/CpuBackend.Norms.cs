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
                    float* xr = xp + r * n, yr = yp + r * n;
                    CpuNorm.Standardize(xr, yr, n, eps);
                    if (gp != null) CpuVector.Mul(yr, gp, yr, n);
                    if (bp != null) CpuVector.AddInPlace(yr, bp, n);
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
                    float* xr = xp + r * n, yr = yp + r * n;
                    CpuNorm.Standardize(xr, yr, n, eps);
                    CpuVector.MulAdd(yr, scp, shp, yr, n);
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
                    float* xr = xp + r * n, yr = yp + r * n;
                    float ss = CpuNorm.SumOfSquares(xr, n);
                    float inv = 1f / MathF.Sqrt(ss / n + eps);
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(xr, n), inv, new Span<float>(yr, n));
                    CpuVector.Mul(yr, gp, yr, n);
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
            fixed (float* iv = inv)
            {
                for (int ch = 0; ch < c; ch++)
                {
                    var row = new ReadOnlySpan<float>(xp + ch * l + p0, len);
                    TensorPrimitives.FusedMultiplyAdd(row, row, new ReadOnlySpan<float>(iv, len), new Span<float>(iv, len));
                }
                for (int i = 0; i < len; i++) iv[i] = sqrtC / MathF.Max(MathF.Sqrt(iv[i]), 1e-12f);
                for (int ch = 0; ch < c; ch++)
                {
                    float* xr = xp + ch * l + p0, yr = yp + ch * l + p0;
                    var ys = new Span<float>(yr, len);
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(xr, len), new ReadOnlySpan<float>(iv, len), ys);
                    CpuVector.ScaleShift(yr, g[ch], b is null ? 0f : b[ch], yr, len);
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

/// <summary>Row statistics in float32 with a two-pass mean/variance (no catastrophic cancellation).</summary>
internal static unsafe class CpuNorm
{
    /// <summary>y = (x − mean) / sqrt(var + eps), biased variance.</summary>
    public static void Standardize(float* x, float* y, int n, float eps)
    {
        var xs = new ReadOnlySpan<float>(x, n);
        float mean = TensorPrimitives.Sum(xs) / n;
        var ys = new Span<float>(y, n);
        TensorPrimitives.Subtract(xs, mean, ys);
        float var = TensorPrimitives.SumOfSquares(ys) / n;
        TensorPrimitives.Multiply(ys, 1f / MathF.Sqrt(var + eps), ys);
    }

    public static float SumOfSquares(float* x, int n) => TensorPrimitives.SumOfSquares(new ReadOnlySpan<float>(x, n));
}
