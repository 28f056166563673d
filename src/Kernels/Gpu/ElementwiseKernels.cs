using ILGPU;
using ILGPU.Algorithms;

namespace Sora.Kernels.Gpu;

/// <summary>A unary map y = f(x).</summary>
public interface IUnaryOp
{
    float Apply(float x);
}

/// <summary>A binary map y = f(a, b).</summary>
public interface IBinaryOp
{
    float Apply(float a, float b);
}

public readonly struct GeluOp : IUnaryOp
{
    public float Apply(float x) => Activations.GeluTanh(x);
}

public readonly struct SiluOp : IUnaryOp
{
    public float Apply(float x) => Activations.Silu(x);
}

public readonly struct ScaleShiftOp(float a, float b) : IUnaryOp
{
    public readonly float A = a, B = b;
    public float Apply(float x) => A * x + B;
}

public readonly struct ClampOp(float min, float max) : IUnaryOp
{
    public readonly float Min = min, Max = max;
    public float Apply(float x) => XMath.Min(XMath.Max(x, Min), Max);
}

public readonly struct AddOp : IBinaryOp
{
    public float Apply(float a, float b) => a + b;
}

public readonly struct MulOp : IBinaryOp
{
    public float Apply(float a, float b) => a * b;
}

/// <summary>a + s·b (the Euler step: x + (σ_next − σ)·v).</summary>
public readonly struct AxpyOp(float s) : IBinaryOp
{
    public readonly float S = s;
    public float Apply(float a, float b) => a + S * b;
}

/// <summary>uncond + g·(cond − uncond).</summary>
public readonly struct GuidanceOp(float g) : IBinaryOp
{
    public readonly float G = g;
    public float Apply(float a, float b) => a + G * (b - a);
}

/// <summary>Up to eight terms of a linear combination (kernels take no arrays); unused terms have coefficient 0.</summary>
public readonly struct Terms8
{
    public readonly ArrayView<float> T0, T1, T2, T3, T4, T5, T6, T7;
    public readonly float C0, C1, C2, C3, C4, C5, C6, C7;
    public readonly int Count;

    public const int Capacity = 8;

    /// <param name="t">The term views, at most <see cref="Capacity"/>.</param>
    /// <param name="c">Their coefficients, one per view.</param>
    /// <param name="unused">Any valid view, standing in for the slots beyond the terms given (never read).</param>
    public Terms8(ReadOnlySpan<ArrayView<float>> t, ReadOnlySpan<float> c, ArrayView<float> unused)
    {
        Count = t.Length;
        ArrayView<float> Get(ReadOnlySpan<ArrayView<float>> views, int i) => i < views.Length ? views[i] : unused;
        float Coef(ReadOnlySpan<float> cs, int i) => i < cs.Length ? cs[i] : 0f;
        (T0, T1, T2, T3) = (Get(t, 0), Get(t, 1), Get(t, 2), Get(t, 3));
        (T4, T5, T6, T7) = (Get(t, 4), Get(t, 5), Get(t, 6), Get(t, 7));
        (C0, C1, C2, C3) = (Coef(c, 0), Coef(c, 1), Coef(c, 2), Coef(c, 3));
        (C4, C5, C6, C7) = (Coef(c, 4), Coef(c, 5), Coef(c, 6), Coef(c, 7));
    }

    public float At(long i)
    {
        if (Count == 0) return 0f;
        float s = C0 * T0[i];
        if (Count > 1) s += C1 * T1[i];
        if (Count > 2) s += C2 * T2[i];
        if (Count > 3) s += C3 * T3[i];
        if (Count > 4) s += C4 * T4[i];
        if (Count > 5) s += C5 * T5[i];
        if (Count > 6) s += C6 * T6[i];
        if (Count > 7) s += C7 * T7[i];
        return s;
    }
}

/// <summary>One thread per output element: elementwise maps, layout changes, gathers, copies.</summary>
public static class ElementwiseKernels
{
    /// <summary>y[i] = w[i]: a stored weight of any encoding expanded to float32.</summary>
    public static void Expand<TW>(Index1D i, TW w, ArrayView<float> y) where TW : struct, IReadFloat => y[i] = w.Read(i);

    public static void Unary<TOp>(Index1D i, ArrayView<float> x, ArrayView<float> y, TOp op) where TOp : struct, IUnaryOp =>
        y[i] = op.Apply(x[i]);

    public static void Binary<TOp>(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, TOp op) where TOp : struct, IBinaryOp =>
        y[i] = op.Apply(a[i], b[i]);

    /// <summary>y = accumulate·y + Σ cᵢ·tᵢ (accumulate is 0 or 1).</summary>
    public static void Combine(Index1D i, Terms8 terms, ArrayView<float> y, float accumulate)
    {
        float s = terms.At(i);
        y[i] = accumulate != 0f ? y[i] + s : s;
    }

    /// <summary>x[r, c] += gate[c] · y[r, c] over rows of width n.</summary>
    public static void GatedResidual(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> gate, int n) =>
        x[i] += gate[i % n] * y[i];

    /// <summary>Per channel of [C, L]: y = x·scale[c] + shift[c].</summary>
    public static void ChannelAffine(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> scale, ArrayView<float> shift, int length)
    {
        int c = i / length;
        y[i] = x[i] * scale[c] + shift[c];
    }

    /// <summary>Rotary pairs: thread i rotates pair i of the [rows, H, D/2] pairs of a row-strided x [rows, H, D].</summary>
    public static void Rope(Index1D i, ArrayView<float> x, ArrayView<float> cos, ArrayView<float> sin, int heads, int halfDim, int positions, long ldx)
    {
        int pair = i % halfDim, rest = i / halfDim;
        int head = rest % heads, row = rest / heads;
        int pos = row % positions;
        long at = row * ldx + (long)head * 2 * halfDim + 2 * pair;
        float c = cos[pos * halfDim + pair], s = sin[pos * halfDim + pair];
        float a = x[at], b = x[at + 1];
        x[at] = a * c - b * s;
        x[at + 1] = a * s + b * c;
    }

    /// <summary>Nearest 2× in space: y [P, 2H, 2W] from x [P, H, W].</summary>
    public static void Upsample2x(Index1D i, ArrayView<float> x, ArrayView<float> y, int h, int w)
    {
        int j = i % (2 * w), rest = i / (2 * w);
        int r = rest % (2 * h), plane = rest / (2 * h);
        y[i] = x[((long)plane * h + r / 2) * w + j / 2];
    }

    /// <summary>y [B, dim]: sin/cos of timestep·freq[j] (frequencies computed on the host in float32 like diffusers).</summary>
    public static void Timestep(Index1D i, ArrayView<float> timesteps, ArrayView<float> freqs, ArrayView<float> y, int dim, int flip)
    {
        int half = dim / 2;
        int j = i % dim, b = i / dim;
        if (j >= 2 * half)
        {
            y[i] = 0f;
            return;
        }
        bool first = j < half;
        float angle = timesteps[b] * freqs[first ? j : j - half];
        // Reduce to [−π, π] in double first: fast device sin/cos lose accuracy for angles up to ~1000 rad.
        const double twoPi = 2 * Math.PI;
        double a = angle;
        float reduced = (float)(a - twoPi * XMath.Round(a / twoPi));
        bool useCos = first == (flip != 0);
        y[i] = useCos ? XMath.Cos(reduced) : XMath.Sin(reduced);
    }

    /// <summary>y[i, :] = table[ids[i], :] widened to float32.</summary>
    public static void Gather<TR>(Index1D i, ArrayView<int> ids, TR table, ArrayView<float> y, int d) where TR : struct, IReadFloat
    {
        int row = i / d, c = i - row * d;
        y[i] = table.Read((long)ids[row] * d + c);
    }

    /// <summary>x [C, T, H, W] → y [T'·H'·W', C·pt·ph·pw], tokens (frame, row, column), features (c, kt, kh, kw).</summary>
    public static void Patchify(Index1D i, ArrayView<float> x, ArrayView<float> y, PatchShape p)
    {
        int f = i % p.Features, token = i / p.Features;
        int kw = f % p.PW, r = f / p.PW;
        int kh = r % p.PH; r /= p.PH;
        int kt = r % p.PT;
        int c = r / p.PT;
        int wi = token % p.WW, r2 = token / p.WW;
        int hi = r2 % p.HH, ti = r2 / p.HH;
        y[i] = x[(((long)c * p.T + ti * p.PT + kt) * p.H + hi * p.PH + kh) * p.W + wi * p.PW + kw];
    }

    /// <summary>x [T'·H'·W', pt·ph·pw·C] with features (kt, kh, kw, c) → y [C, T, H, W]; one thread per y element.</summary>
    public static void Unpatchify(Index1D i, ArrayView<float> x, ArrayView<float> y, PatchShape p)
    {
        int w = i % p.W, r = i / p.W;
        int h = r % p.H; r /= p.H;
        int t = r % p.T;
        int c = r / p.T;
        int token = ((t / p.PT) * p.HH + h / p.PH) * p.WW + w / p.PW;
        int f = (((t % p.PT) * p.PH + h % p.PH) * p.PW + w % p.PW) * p.C + c;
        y[i] = x[(long)token * p.Features + f];
    }

    /// <summary>dst[layout(i)] = src[layout(i)] with dtype conversion: any strides on both sides.</summary>
    public static void Copy<TR, TW>(Index1D i, TR src, StridedLayout from, TW dst, StridedLayout to)
        where TR : struct, IReadFloat where TW : struct, IWriteFloat =>
        dst.Write(to.At(i), src.Read(from.At(i)));
}

/// <summary>Sizes of a patchify / unpatchify: video [C, T, H, W], patch (PT, PH, PW), grid (T', H', W').</summary>
public readonly struct PatchShape(int c, int t, int h, int w, int pt, int ph, int pw)
{
    public readonly int C = c, T = t, H = h, W = w, PT = pt, PH = ph, PW = pw;
    public readonly int HH = h / ph, WW = w / pw, Features = c * pt * ph * pw;
}
