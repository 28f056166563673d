using ILGPU;
using ILGPU.Runtime;
using Sora.Runtime;

namespace Sora.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    public void AdaLnModulateRows(Tensor x, Tensor shiftBase, Tensor shift, Tensor scaleBase, Tensor scale, ReadOnlySpan<int> rowSets, float eps, Tensor y)
    {
        var xv = Rows(x, nameof(x), out int m, out int n);
        var yv = SameShape(y, nameof(y), x);
        int g = RowSets.Count(shift, nameof(shift), n);
        if (RowSets.Count(scale, nameof(scale), n) != g)
            throw new ArgumentException($"scale {scale.ShapeString} and shift {shift.ShapeString} must have the same sets", nameof(scale));
        var shv = Matrix(shift, nameof(shift), g, n, out long ldsh);
        var scv = Matrix(scale, nameof(scale), g, n, out long ldsc);
        RowSets.Check(rowSets, m, g);
        using var temps = new Temps();
        var shb = Vector(shiftBase, nameof(shiftBase), n, temps);
        var scb = Vector(scaleBase, nameof(scaleBase), n, temps);
        if (m == 0 || n == 0) return;
        var sets = Upload(rowSets, temps);
        var kernel = Kernel("adalnrows", () => Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<int>, AdaLnRowsShape>(NormKernels.AdaLnRows));
        kernel(new KernelConfig(new Index1D(m), new Index1D(Options.NormGroupSize)), xv, yv, shb, shv, scb, scv, sets,
            new AdaLnRowsShape(n, eps, ldsh, ldsc));
    }

    public void GemmGatedRows(Tensor x, Tensor w, Tensor? bias, Tensor y, Tensor residual, Tensor gateBase, Tensor gate, ReadOnlySpan<int> rowSets)
    {
        ArgumentNullException.ThrowIfNull(residual);
        Storage(w, nameof(w));
        RequireRank(w, nameof(w), 2);
        RequireContiguous(w, nameof(w));
        RequireRank(x, nameof(x), 2);
        int m = x.Dim(0), k = x.Dim(1), n = w.Dim(0);
        if (w.Dim(1) != k) throw new ArgumentException($"w {w.ShapeString} does not match x {x.ShapeString}: expected [N, {k}]", nameof(w));
        var xv = Matrix(x, nameof(x), m, k, out long ldx);
        var yv = Matrix(y, nameof(y), m, n, out long ldy);
        var rv = Matrix(residual, nameof(residual), m, n, out long ldr);
        int g = RowSets.Count(gate, nameof(gate), n);
        var gv = Matrix(gate, nameof(gate), g, n, out long ldg);
        RowSets.Check(rowSets, m, g);
        using var temps = new Temps();
        var bv = bias is null ? Dummy : Vector(bias, nameof(bias), n, temps);
        var gbv = Vector(gateBase, nameof(gateBase), n, temps);
        if (m == 0 || n == 0) return;
        var sets = Upload(rowSets, temps);
        GemmWith(new DenseInput(xv, ldx), w, new GatedRowsOutput(yv, ldy, bv, bias is null ? 0 : 1, rv, ldr, gbv, gv, ldg, sets), m, n, k);
    }
}
