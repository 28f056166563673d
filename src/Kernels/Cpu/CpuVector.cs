using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Sora.Kernels.Cpu;

/// <summary>
/// Vectorised primitives over raw float rows: 512-bit loops with scalar tails. Exponentials use a Cephes-style
/// polynomial (≈1 ulp), because a fast exp is what GELU, SiLU and softmax are bound by.
/// </summary>
internal static unsafe class CpuVector
{
    private const int W = 16;

    private static Span<float> S(float* p, int n) => new(p, n);
    private static ReadOnlySpan<float> R(float* p, int n) => new(p, n);

    public static void AddInPlace(float* y, float* b, int n) => TensorPrimitives.Add(R(y, n), R(b, n), S(y, n));

    public static void Add(float* a, float* b, float* y, int n) => TensorPrimitives.Add(R(a, n), R(b, n), S(y, n));

    public static void Mul(float* a, float* b, float* y, int n) => TensorPrimitives.Multiply(R(a, n), R(b, n), S(y, n));

    /// <summary>y = a·b + c</summary>
    public static void MulAdd(float* a, float* b, float* c, float* y, int n) => TensorPrimitives.FusedMultiplyAdd(R(a, n), R(b, n), R(c, n), S(y, n));

    /// <summary>y = x·a + b (scalars)</summary>
    public static void ScaleShift(float* x, float a, float b, float* y, int n)
    {
        int i = 0;
        var va = Vector512.Create(a);
        var vb = Vector512.Create(b);
        for (; i + W <= n; i += W) Vector512.FusedMultiplyAdd(Vector512.Load(x + i), va, vb).Store(y + i);
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd(x[i], a, b);
    }

    // ---- exponential family ---------------------------------------------------------------------------

    /// <summary>e^x: n = round(x·log2 e), r = x − n·ln 2 (two-part ln 2), e^r by a degree-7 polynomial, times 2ⁿ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        // Below −87.3 the result is subnormal or zero: flush to zero (also maps −∞ to 0).
        var tiny = Vector512.LessThan(x, Vector512.Create(-87.33654f));
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(-87.33654f)), Vector512.Create(88.72283f));
        var n = Vector512.Round(x * Vector512.Create(1.44269504088896341f));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693359375f), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(2.12194440e-4f), r);
        var p = Vector512.Create(1.9875691500E-4f);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.3981999507E-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(8.3334519073E-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(4.1665795894E-2f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.6666665459E-1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(5.0000001201E-1f));
        p = Vector512.FusedMultiplyAdd(p, r * r, r + Vector512<float>.One);
        // 2ⁿ by building the exponent bits; n ∈ [−126, 128] here, 128 only at the overflow clamp.
        var e = Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle();
        var result = p * e;
        return Vector512.ConditionalSelect(tiny, Vector512<float>.Zero, result);
    }

    /// <summary>gelu_tanh(x) = x·sigmoid(2u) = x / (1 + e^(−2u)), u = √(2/π)(x + 0.044715x³), since 0.5(1 + tanh u) = sigmoid(2u).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> GeluTanh(Vector512<float> x)
    {
        const float c = 0.7978845608028654f;
        var x2 = x * x;
        var minus2u = x * Vector512.FusedMultiplyAdd(x2, Vector512.Create(-2 * c * 0.044715f), Vector512.Create(-2 * c));
        return x / (Vector512<float>.One + Exp(minus2u));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Silu(Vector512<float> x) => x / (Vector512<float>.One + Exp(-x));

    public static void GeluTanh(float* x, float* y, int n)
    {
        int i = 0;
        for (; i + W <= n; i += W) GeluTanh(Vector512.Load(x + i)).Store(y + i);
        if (i < n) Tail(x + i, y + i, n - i, static v => GeluTanh(v));
    }

    public static void Silu(float* x, float* y, int n)
    {
        int i = 0;
        for (; i + W <= n; i += W) Silu(Vector512.Load(x + i)).Store(y + i);
        if (i < n) Tail(x + i, y + i, n - i, static v => Silu(v));
    }

    /// <summary>The last &lt;16 elements through a zero-padded vector.</summary>
    private static void Tail(float* x, float* y, int n, Func<Vector512<float>, Vector512<float>> f)
    {
        float* buf = stackalloc float[W];
        new Span<float>(buf, W).Clear();
        Buffer.MemoryCopy(x, buf, n * 4L, n * 4L);
        f(Vector512.Load(buf)).Store(buf);
        Buffer.MemoryCopy(buf, y, n * 4L, n * 4L);
    }

    /// <summary>x = x·scale (+ bias) in place, returning the maximum.</summary>
    public static float ScaleMax(float* x, float scale, float* bias, int n)
    {
        var sc = Vector512.Create(scale);
        var mx = Vector512.Create(float.NegativeInfinity);
        int i = 0;
        for (; i + W <= n; i += W)
        {
            var v = Vector512.Load(x + i) * sc;
            if (bias != null) v += Vector512.Load(bias + i);
            v.Store(x + i);
            mx = Vector512.Max(mx, v);
        }
        float m = float.NegativeInfinity;
        for (int l = 0; l < W; l++) m = MathF.Max(m, mx[l]);
        for (; i < n; i++)
        {
            x[i] = x[i] * scale + (bias != null ? bias[i] : 0f);
            m = MathF.Max(m, x[i]);
        }
        return m;
    }

    /// <summary>x = e^(x − shift) in place, returning the sum.</summary>
    public static float ExpShiftSum(float* x, float shift, int n)
    {
        var sh = Vector512.Create(shift);
        var acc = Vector512<float>.Zero;
        int i = 0;
        for (; i + W <= n; i += W)
        {
            var e = Exp(Vector512.Load(x + i) - sh);
            e.Store(x + i);
            acc += e;
        }
        float s = Vector512.Sum(acc);
        for (; i < n; i++) s += x[i] = Exp(Vector512.Create(x[i] - shift)).ToScalar();
        return s;
    }

    // ---- row statistics --------------------------------------------------------------------------------

    public static float Sum(float* x, int n)
    {
        var acc0 = Vector512<float>.Zero;
        var acc1 = Vector512<float>.Zero;
        int i = 0;
        for (; i + 2 * W <= n; i += 2 * W)
        {
            acc0 += Vector512.Load(x + i);
            acc1 += Vector512.Load(x + i + W);
        }
        for (; i + W <= n; i += W) acc0 += Vector512.Load(x + i);
        float s = Vector512.Sum(acc0 + acc1);
        for (; i < n; i++) s += x[i];
        return s;
    }

    /// <summary>Σ (x − shift) and Σ (x − shift)² in one pass.</summary>
    public static (float Sum, float SumOfSquares) ShiftedMoments(float* x, float shift, int n)
    {
        var k = Vector512.Create(shift);
        Vector512<float> s0 = default, s1 = default, q0 = default, q1 = default;
        int i = 0;
        for (; i + 2 * W <= n; i += 2 * W)
        {
            var d0 = Vector512.Load(x + i) - k;
            var d1 = Vector512.Load(x + i + W) - k;
            s0 += d0;
            s1 += d1;
            q0 = Vector512.FusedMultiplyAdd(d0, d0, q0);
            q1 = Vector512.FusedMultiplyAdd(d1, d1, q1);
        }
        for (; i + W <= n; i += W)
        {
            var d = Vector512.Load(x + i) - k;
            s0 += d;
            q0 = Vector512.FusedMultiplyAdd(d, d, q0);
        }
        float sum = Vector512.Sum(s0 + s1), sq = Vector512.Sum(q0 + q1);
        for (; i < n; i++)
        {
            float d = x[i] - shift;
            sum += d;
            sq += d * d;
        }
        return (sum, sq);
    }

    /// <summary>Σ (x − mean)²</summary>
    public static float SumSquaredDeviation(float* x, float mean, int n)
    {
        var m = Vector512.Create(mean);
        var acc0 = Vector512<float>.Zero;
        var acc1 = Vector512<float>.Zero;
        int i = 0;
        for (; i + 2 * W <= n; i += 2 * W)
        {
            var d0 = Vector512.Load(x + i) - m;
            var d1 = Vector512.Load(x + i + W) - m;
            acc0 = Vector512.FusedMultiplyAdd(d0, d0, acc0);
            acc1 = Vector512.FusedMultiplyAdd(d1, d1, acc1);
        }
        for (; i + W <= n; i += W)
        {
            var d = Vector512.Load(x + i) - m;
            acc0 = Vector512.FusedMultiplyAdd(d, d, acc0);
        }
        float s = Vector512.Sum(acc0 + acc1);
        for (; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
        return s;
    }

    /// <summary>y = (x − mean)·inv·scale + shift, scale/shift per element (either may be null: 1 and 0).</summary>
    public static void Normalize(float* x, float mean, float inv, float* scale, float* shift, float* y, int n)
    {
        if (scale != null && shift != null) NormalizeAffine(x, mean, inv, scale, shift, y, n);
        else if (scale != null) NormalizeScale(x, mean, inv, scale, y, n);
        else
        {
            NormalizeScale(x, mean, inv, null, y, n);
            if (shift != null) AddInPlace(y, shift, n);
        }
    }

    private static void NormalizeAffine(float* x, float mean, float inv, float* scale, float* shift, float* y, int n)
    {
        // Subtract the mean before scaling: x·inv − mean·inv would lose digits when |mean| ≫ std.
        var iv = Vector512.Create(inv);
        var m = Vector512.Create(mean);
        int i = 0;
        for (; i + W <= n; i += W)
            Vector512.FusedMultiplyAdd((Vector512.Load(x + i) - m) * iv, Vector512.Load(scale + i), Vector512.Load(shift + i)).Store(y + i);
        for (; i < n; i++) y[i] = ((x[i] - mean) * inv) * scale[i] + shift[i];
    }

    /// <summary>y = (x − mean)·inv·scale, scale null meaning 1.</summary>
    private static void NormalizeScale(float* x, float mean, float inv, float* scale, float* y, int n)
    {
        var iv = Vector512.Create(inv);
        var m = Vector512.Create(mean);
        int i = 0;
        if (scale != null)
            for (; i + W <= n; i += W) ((Vector512.Load(x + i) - m) * iv * Vector512.Load(scale + i)).Store(y + i);
        else
            for (; i + W <= n; i += W) ((Vector512.Load(x + i) - m) * iv).Store(y + i);
        for (; i < n; i++) y[i] = (x[i] - mean) * inv * (scale != null ? scale[i] : 1f);
    }
}
