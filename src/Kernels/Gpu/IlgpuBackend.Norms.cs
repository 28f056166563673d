using ILGPU;
using ILGPU.Runtime;
using Sora.Runtime;

namespace Sora.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    /// <summary>x viewed as rows of its last dimension: contiguous F32.</summary>
    private ArrayView<float> Rows(Tensor t, string name, out int rows, out int width)
    {
        var v = F32Dense(t, name);
        if (t.Rank == 0) throw new ArgumentException($"{name} must have at least one dimension", name);
        width = t.Dim(-1);
        rows = width == 0 ? 0 : checked((int)(t.ElementCount / width));
        return v;
    }

    private ArrayView<float> SameShape(Tensor y, string name, Tensor x)
    {
        var v = F32Dense(y, name);
        if (!y.Shape.AsSpan().SequenceEqual(x.Shape))
            throw new ArgumentException($"{name} must have the shape of x {x.ShapeString}, got {y.ShapeString}", name);
        return v;
    }

    public void LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps, Tensor y)
    {
        var xv = Rows(x, nameof(x), out int m, out int n);
        var yv = SameShape(y, nameof(y), x);
        using var temps = new Temps();
        var wv = weight is null ? Dummy : Vector(weight, nameof(weight), n, temps);
        var bv = bias is null ? Dummy : Vector(bias, nameof(bias), n, temps);
        RowNorm(xv, yv, wv, bv, m, new RowNormShape(n, eps, RowNormKind.LayerNorm, weight is null ? 0 : 1, bias is null ? 0 : 1));
    }

    public void AdaLnModulate(Tensor x, Tensor shift, Tensor scale, float eps, Tensor y)
    {
        var xv = Rows(x, nameof(x), out int m, out int n);
        var yv = SameShape(y, nameof(y), x);
        using var temps = new Temps();
        var sh = Vector(shift, nameof(shift), n, temps);
        var sc = Vector(scale, nameof(scale), n, temps);
        RowNorm(xv, yv, sc, sh, m, new RowNormShape(n, eps, RowNormKind.AdaLn, 1, 1));
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y)
    {
        var xv = Rows(x, nameof(x), out int m, out int n);
        var yv = SameShape(y, nameof(y), x);
        using var temps = new Temps();
        var wv = Vector(weight, nameof(weight), n, temps);
        RowNorm(xv, yv, wv, Dummy, m, new RowNormShape(n, eps, RowNormKind.Rms, 1, 0));
    }

    private void RowNorm(ArrayView<float> x, ArrayView<float> y, ArrayView<float> weight, ArrayView<float> bias, int rows, RowNormShape shape)
    {
        if (rows == 0 || shape.Width == 0) return;
        int group = Options.NormGroupSize;
        var kernel = Kernel("rownorm", () => Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, RowNormShape>(NormKernels.Rows));
        kernel(new KernelConfig(new Index1D(rows), new Index1D(group)), x, y, weight, bias, shape);
    }

    public void ChannelRmsNorm(Tensor x, Tensor gamma, Tensor? beta, Tensor y)
    {
        var xv = F32Dense(x, nameof(x));
        var yv = SameShape(y, nameof(y), x);
        if (x.Rank < 2) throw new ArgumentException($"x must be [C, L...], got {x.ShapeString}", nameof(x));
        int c = x.Dim(0);
        long l = x.ElementCount / Math.Max(1, c);
        using var temps = new Temps();
        var gv = Vector(gamma, nameof(gamma), c, temps);
        var bv = beta is null ? Dummy : Vector(beta, nameof(beta), c, temps);
        if (l == 0 || c == 0) return;
        var kernel = Kernel("channelrms", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, long, int>(NormKernels.Channels));
        kernel(Elements(l, "x positions"), xv, yv, gv, bv, c, l, beta is null ? 0 : 1);
    }

    public void GatedResidual(Tensor x, Tensor y, Tensor gate)
    {
        var xv = Rows(x, nameof(x), out int m, out int n);
        var yv = SameShape(y, nameof(y), x);
        using var temps = new Temps();
        var gv = Vector(gate, nameof(gate), n, temps);
        if (x.ElementCount == 0) return;
        var kernel = Kernel("gatedresidual", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.GatedResidual));
        kernel(Elements(x.ElementCount, "x"), xv, yv, gv, n);
    }
}
