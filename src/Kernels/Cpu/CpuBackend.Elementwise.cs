using System.Numerics.Tensors;
using Sora.Runtime;
using Tensor = Sora.Runtime.Tensor;

namespace Sora.Kernels.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Elements per work item of elementwise ops: large enough that scheduling costs nothing.</summary>
    private const long ElementGrain = 1 << 15;

    private float* Out(Tensor y, string name, Tensor like)
    {
        float* p = HostArgs.F32Dense(y, name);
        HostArgs.RequireSameCount(y, name, like.ElementCount, $"as many as {like.ShapeString}");
        return p;
    }

    private void Elementwise(long n, Action<long, int> body) =>
        ForRanges(n, ElementGrain, (s, e) => body(s, (int)(e - s)));

    public void GeluTanh(Tensor x, Tensor y)
    {
        float* xp = HostArgs.F32Dense(x, nameof(x)), yp = Out(y, nameof(y), x);
        Elementwise(x.ElementCount, (s, n) => CpuVector.GeluTanh(xp + s, yp + s, n));
    }

    public void Silu(Tensor x, Tensor y)
    {
        float* xp = HostArgs.F32Dense(x, nameof(x)), yp = Out(y, nameof(y), x);
        Elementwise(x.ElementCount, (s, n) => CpuVector.Silu(xp + s, yp + s, n));
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        float* ap = HostArgs.F32Dense(a, nameof(a)), bp = Out(b, nameof(b), a), yp = Out(y, nameof(y), a);
        Elementwise(a.ElementCount, (s, n) => CpuVector.Add(ap + s, bp + s, yp + s, n));
    }

    public void Mul(Tensor a, Tensor b, Tensor y)
    {
        float* ap = HostArgs.F32Dense(a, nameof(a)), bp = Out(b, nameof(b), a), yp = Out(y, nameof(y), a);
        Elementwise(a.ElementCount, (s, n) => CpuVector.Mul(ap + s, bp + s, yp + s, n));
    }

    public void ScaleShift(Tensor x, float a, float b, Tensor y)
    {
        float* xp = HostArgs.F32Dense(x, nameof(x)), yp = Out(y, nameof(y), x);
        Elementwise(x.ElementCount, (s, n) => CpuVector.ScaleShift(xp + s, a, b, yp + s, n));
    }

    public void Clamp(Tensor x, float min, float max, Tensor y)
    {
        if (!(min <= max)) throw new ArgumentException($"Clamp needs min <= max, got [{min}, {max}]", nameof(min));
        float* xp = HostArgs.F32Dense(x, nameof(x)), yp = Out(y, nameof(y), x);
        Elementwise(x.ElementCount, (s, n) =>
        {
            var ys = new Span<float>(yp + s, n);
            TensorPrimitives.Max(new ReadOnlySpan<float>(xp + s, n), min, ys);
            TensorPrimitives.Min(ys, max, ys);
        });
    }

    public void ChannelAffine(Tensor x, float[] scale, float[] shift, Tensor y)
    {
        ArgumentNullException.ThrowIfNull(scale);
        ArgumentNullException.ThrowIfNull(shift);
        float* xp = HostArgs.F32Dense(x, nameof(x)), yp = Out(y, nameof(y), x);
        if (x.Rank < 1) throw new ArgumentException($"x must be [C, L...], got {x.ShapeString}", nameof(x));
        int c = x.Dim(0);
        if (scale.Length != c) throw new ArgumentException($"scale has {scale.Length} values for {c} channels of x {x.ShapeString}", nameof(scale));
        if (shift.Length != c) throw new ArgumentException($"shift has {shift.Length} values for {c} channels of x {x.ShapeString}", nameof(shift));
        long l = c == 0 ? 0 : x.ElementCount / c;
        For(c, ch => CpuVector.ScaleShift(xp + ch * l, scale[ch], shift[ch], yp + ch * l, checked((int)l)));
    }

    public void CfgCombine(Tensor uncond, Tensor cond, float guidance, Tensor y)
    {
        float* up = HostArgs.F32Dense(uncond, nameof(uncond)), cp = Out(cond, nameof(cond), uncond), yp = Out(y, nameof(y), uncond);
        Elementwise(uncond.ElementCount, (s, n) =>
        {
            // y = u + g(c − u) = g·c + (1 − g)·u
            var ys = new Span<float>(yp + s, n);
            var us = new ReadOnlySpan<float>(up + s, n);
            var cs = new ReadOnlySpan<float>(cp + s, n);
            TensorPrimitives.Subtract(cs, us, ys);
            TensorPrimitives.MultiplyAdd(ys, guidance, us, ys);
        });
    }

    public void EulerStep(Tensor x, Tensor v, float sigma, float sigmaNext)
    {
        float* xp = HostArgs.F32Dense(x, nameof(x)), vp = Out(v, nameof(v), x);
        float dt = sigmaNext - sigma;
        Elementwise(x.ElementCount, (s, n) =>
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(vp + s, n), dt, new ReadOnlySpan<float>(xp + s, n), new Span<float>(xp + s, n)));
    }

    public void LinearCombination(ReadOnlySpan<float> coefficients, ReadOnlySpan<Tensor> terms, Tensor y)
    {
        if (coefficients.Length != terms.Length)
            throw new ArgumentException($"{coefficients.Length} coefficients for {terms.Length} terms", nameof(coefficients));
        float* yp = HostArgs.F32Dense(y, nameof(y));
        float[] c = coefficients.ToArray();
        var ptrs = new nint[terms.Length];
        for (int i = 0; i < terms.Length; i++)
        {
            string name = $"terms[{i}]";
            ptrs[i] = (nint)HostArgs.F32Dense(terms[i], name);
            HostArgs.RequireSameCount(terms[i], name, y.ElementCount, $"as many as y {y.ShapeString}");
        }
        Elementwise(y.ElementCount, (s, n) =>
        {
            // Accumulate in a scratch row: y may itself be one of the terms.
            var acc = new float[n];
            for (int i = 0; i < c.Length; i++)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>((float*)ptrs[i] + s, n), c[i], acc, acc);
            acc.CopyTo(new Span<float>(yp + s, n));
        });
    }
}
