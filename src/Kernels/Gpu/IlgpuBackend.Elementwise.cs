using ILGPU;
using ILGPU.Runtime;
using Sora.Runtime;

namespace Sora.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    /// <summary>y must be dense F32 with as many elements as <paramref name="like"/>.</summary>
    private ArrayView<float> Out(Tensor y, string name, Tensor like)
    {
        var v = F32Dense(y, name);
        RequireCount(y, name, like.ElementCount, $"as many as {like.ShapeString}");
        return v;
    }

    private void Unary<TOp>(Tensor x, Tensor y, TOp op) where TOp : struct, IUnaryOp
    {
        var xv = F32Dense(x, nameof(x));
        var yv = Out(y, nameof(y), x);
        if (x.ElementCount == 0) return;
        var kernel = Kernel("unary", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, TOp>(ElementwiseKernels.Unary));
        kernel(Elements(x.ElementCount, "x"), xv, yv, op);
    }

    private void Binary<TOp>(Tensor a, string aName, Tensor b, string bName, Tensor y, string yName, TOp op) where TOp : struct, IBinaryOp
    {
        var av = F32Dense(a, aName);
        var bv = Out(b, bName, a);
        var yv = Out(y, yName, a);
        if (a.ElementCount == 0) return;
        var kernel = Kernel("binary", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, TOp>(ElementwiseKernels.Binary));
        kernel(Elements(a.ElementCount, aName), av, bv, yv, op);
    }

    public void GeluTanh(Tensor x, Tensor y) => Unary(x, y, new GeluOp());

    public void Silu(Tensor x, Tensor y) => Unary(x, y, new SiluOp());

    public void Add(Tensor a, Tensor b, Tensor y) => Binary(a, nameof(a), b, nameof(b), y, nameof(y), new AddOp());

    public void Mul(Tensor a, Tensor b, Tensor y) => Binary(a, nameof(a), b, nameof(b), y, nameof(y), new MulOp());

    public void ScaleShift(Tensor x, float a, float b, Tensor y) => Unary(x, y, new ScaleShiftOp(a, b));

    public void Clamp(Tensor x, float min, float max, Tensor y)
    {
        if (!(min <= max)) throw new ArgumentException($"Clamp needs min <= max, got [{min}, {max}]", nameof(min));
        Unary(x, y, new ClampOp(min, max));
    }

    public void CfgCombine(Tensor uncond, Tensor cond, float guidance, Tensor y) =>
        Binary(uncond, nameof(uncond), cond, nameof(cond), y, nameof(y), new GuidanceOp(guidance));

    public void EulerStep(Tensor x, Tensor v, float sigma, float sigmaNext) =>
        Binary(x, nameof(x), v, nameof(v), x, nameof(x), new AxpyOp(sigmaNext - sigma));

    public void ChannelAffine(Tensor x, float[] scale, float[] shift, Tensor y)
    {
        ArgumentNullException.ThrowIfNull(scale);
        ArgumentNullException.ThrowIfNull(shift);
        var xv = F32Dense(x, nameof(x));
        var yv = Out(y, nameof(y), x);
        if (x.Rank < 1) throw new ArgumentException($"x must be [C, L...], got {x.ShapeString}", nameof(x));
        int c = x.Dim(0);
        if (scale.Length != c) throw new ArgumentException($"scale has {scale.Length} values for {c} channels of x {x.ShapeString}", nameof(scale));
        if (shift.Length != c) throw new ArgumentException($"shift has {shift.Length} values for {c} channels of x {x.ShapeString}", nameof(shift));
        long l = c == 0 ? 0 : x.ElementCount / c;
        if (x.ElementCount == 0) return;
        using var temps = new Temps();
        var sc = Upload<float>(scale, temps);
        var sh = Upload<float>(shift, temps);
        var kernel = Kernel("channelaffine", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.ChannelAffine));
        kernel(Elements(x.ElementCount, "x"), xv, yv, sc, sh, checked((int)l));
    }

    public void LinearCombination(ReadOnlySpan<float> coefficients, ReadOnlySpan<Tensor> terms, Tensor y)
    {
        if (coefficients.Length != terms.Length)
            throw new ArgumentException($"{coefficients.Length} coefficients for {terms.Length} terms", nameof(coefficients));
        var yv = F32Dense(y, nameof(y));
        var views = new ArrayView<float>[terms.Length];
        for (int i = 0; i < terms.Length; i++)
        {
            string name = $"terms[{i}]";
            views[i] = F32Dense(terms[i], name);
            RequireCount(terms[i], name, y.ElementCount, $"as many as y {y.ShapeString}");
        }
        if (y.ElementCount == 0) return;
        var kernel = Kernel("combine", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, Terms8, ArrayView<float>, float>(ElementwiseKernels.Combine));
        var n = Elements(y.ElementCount, "y");
        if (terms.Length <= Terms8.Capacity)
        {
            // One pass (no terms: zeros): each thread reads all its terms before writing, so y may be one of them.
            kernel(n, new Terms8(views, coefficients, yv), yv, 0f);
            return;
        }
        // More terms than one launch takes: accumulate in a scratch buffer (y may alias a later term).
        using var scratch = Allocate(DType.F32, y.Shape);
        var sv = F32(scratch, "scratch");
        for (int start = 0; start < terms.Length; start += Terms8.Capacity)
        {
            int count = Math.Min(Terms8.Capacity, terms.Length - start);
            kernel(n, new Terms8(views.AsSpan(start, count), coefficients.Slice(start, count), sv), sv, start == 0 ? 0f : 1f);
        }
        kernel(n, new Terms8([sv], [1f], sv), yv, 0f);
    }

    public void Upsample2x(Tensor x, Tensor y)
    {
        var xv = F32Dense(x, nameof(x));
        RequireRank(x, nameof(x), 4);
        int c = x.Dim(0), t = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        var yv = F32Dense(y, nameof(y));
        RequireShape(y, nameof(y), c, t, 2 * h, 2 * w);
        if (y.ElementCount == 0) return;
        var kernel = Kernel("upsample", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(ElementwiseKernels.Upsample2x));
        kernel(Elements(y.ElementCount, "y"), xv, yv, h, w);
    }

    public void TimestepEmbedding(float[] timesteps, int dim, bool flipSinToCos, float downscaleFreqShift, Tensor y)
    {
        ArgumentNullException.ThrowIfNull(timesteps);
        ArgumentOutOfRangeException.ThrowIfNegative(dim);
        var yv = F32Dense(y, nameof(y));
        RequireShape(y, nameof(y), timesteps.Length, dim);
        int half = dim / 2;
        if (half > 0 && half - downscaleFreqShift == 0) throw new ArgumentException("dim/2 − downscaleFreqShift must not be 0", nameof(downscaleFreqShift));
        if (y.ElementCount == 0) return;
        // diffusers get_timestep_embedding: freq_i = exp(−ln(10000)·i/(half − shift)) in float32.
        var freqs = new float[Math.Max(1, half)];
        for (int i = 0; i < half; i++) freqs[i] = MathF.Exp(-MathF.Log(10000f) * i / (half - downscaleFreqShift));
        using var temps = new Temps();
        var tv = Upload<float>(timesteps, temps);
        var fv = Upload<float>(freqs, temps);
        var kernel = Kernel("timestep", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(ElementwiseKernels.Timestep));
        kernel(Elements(y.ElementCount, "y"), tv, fv, yv, dim, flipSinToCos ? 1 : 0);
    }

    public void Embedding(int[] ids, Tensor table, Tensor y)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var ts = Storage(table, nameof(table));
        RequireRank(table, nameof(table), 2);
        RequireContiguous(table, nameof(table));
        int v = table.Dim(0), d = table.Dim(1);
        var yv = F32Dense(y, nameof(y));
        RequireShape(y, nameof(y), ids.Length, d);
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)v)
                throw new ArgumentOutOfRangeException(nameof(ids), $"ids[{i}] = {ids[i]} is outside the table's vocabulary [0, {v})");
        if (y.ElementCount == 0) return;
        using var temps = new Temps();
        var iv = Upload<int>(ids, temps);
        var n = Elements(y.ElementCount, "y");
        switch (table.DType)
        {
            case DType.F32: Gather(n, iv, new F32Values(ts.View<float>().SubView(table.Offset)), yv, d); break;
            case DType.F16: Gather(n, iv, new F16Values(ts.View<ushort>().SubView(table.Offset)), yv, d); break;
            case DType.BF16: Gather(n, iv, new Bf16Values(ts.View<ushort>().SubView(table.Offset)), yv, d); break;
            default: throw new ArgumentException($"table has unsupported dtype {table.DType}", nameof(table));
        }
    }

    private void Gather<TR>(Index1D n, ArrayView<int> ids, TR table, ArrayView<float> y, int d) where TR : struct, IReadFloat =>
        Kernel("gather", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, TR, ArrayView<float>, int>(ElementwiseKernels.Gather))(n, ids, table, y, d);

    public void Patchify(Tensor x, int pt, int ph, int pw, Tensor y)
    {
        var xv = F32Dense(x, nameof(x));
        RequireRank(x, nameof(x), 4);
        int c = x.Dim(0), t = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        CheckPatch(pt, ph, pw, t, h, w, nameof(x));
        var p = new PatchShape(c, t, h, w, pt, ph, pw);
        var yv = F32Dense(y, nameof(y));
        RequireShape(y, nameof(y), (t / pt) * p.HH * p.WW, p.Features);
        if (y.ElementCount == 0) return;
        var kernel = Kernel("patchify", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PatchShape>(ElementwiseKernels.Patchify));
        kernel(Elements(y.ElementCount, "y"), xv, yv, p);
    }

    public void Unpatchify(Tensor x, int pt, int ph, int pw, Tensor y)
    {
        var yv = F32Dense(y, nameof(y));
        RequireRank(y, nameof(y), 4);
        int c = y.Dim(0), t = y.Dim(1), h = y.Dim(2), w = y.Dim(3);
        CheckPatch(pt, ph, pw, t, h, w, nameof(y));
        var p = new PatchShape(c, t, h, w, pt, ph, pw);
        var xv = F32Dense(x, nameof(x));
        RequireShape(x, nameof(x), (t / pt) * p.HH * p.WW, p.Features);
        if (y.ElementCount == 0) return;
        var kernel = Kernel("unpatchify", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PatchShape>(ElementwiseKernels.Unpatchify));
        kernel(Elements(y.ElementCount, "y"), xv, yv, p);
    }

    private static void CheckPatch(int pt, int ph, int pw, int t, int h, int w, string name)
    {
        if (pt <= 0 || ph <= 0 || pw <= 0) throw new ArgumentException($"patch sizes must be positive, got ({pt}, {ph}, {pw})", name);
        if (t % pt != 0 || h % ph != 0 || w % pw != 0)
            throw new ArgumentException($"{name} [.., {t}, {h}, {w}] is not divisible by the patch ({pt}, {ph}, {pw})", name);
    }
}
