using System.Numerics.Tensors;
using Sora.Runtime;
using Tensor = Sora.Runtime.Tensor;

namespace Sora.Kernels.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void AdaLnModulateRows(Tensor x, Tensor shiftBase, Tensor shift, Tensor scaleBase, Tensor scale, ReadOnlySpan<int> rowSets, float eps, Tensor y)
    {
        float* xp = Rows(x, nameof(x), out int m, out int n);
        float* yp = SameRows(y, nameof(y), x);
        float[] shb = HostArgs.Vector(shiftBase, nameof(shiftBase), n);
        float[] scb = HostArgs.Vector(scaleBase, nameof(scaleBase), n);
        int g = RowSets.Count(shift, nameof(shift), n);
        if (RowSets.Count(scale, nameof(scale), n) != g)
            throw new ArgumentException($"scale {scale.ShapeString} and shift {shift.ShapeString} must have the same sets", nameof(scale));
        float* shp = HostArgs.Matrix(shift, nameof(shift), g, n, out long ldsh);
        float* scp = HostArgs.Matrix(scale, nameof(scale), g, n, out long ldsc);
        RowSets.Check(rowSets, m, g);
        fixed (int* pinned = rowSets)
        {
            int* sets = pinned;
            ForRanges(m, Math.Max(1, 16384 / Math.Max(1, n)), (r0, r1) =>
            {
                // Consecutive rows mostly share a set (frame-major tokens): rebuild the vectors only when it changes.
                var sc = new float[n];
                var sh = new float[n];
                int current = -1;
                fixed (float* scv = sc, shv = sh, scbp = scb, shbp = shb)
                    for (long r = r0; r < r1; r++)
                    {
                        if (sets[r] != current)
                        {
                            current = sets[r];
                            CpuVector.Add(scbp, scp + current * ldsc, scv, n);
                            TensorPrimitives.Add(sc, 1f, sc);
                            CpuVector.Add(shbp, shp + current * ldsh, shv, n);
                        }
                        CpuNorm.Normalize(xp + r * n, n, eps, scv, shv, yp + r * n);
                    }
            });
        }
    }

    public void GemmGatedRows(Tensor x, Tensor w, Tensor? bias, Tensor y, Tensor residual, Tensor gateBase, Tensor gate, ReadOnlySpan<int> rowSets)
    {
        ArgumentNullException.ThrowIfNull(residual);
        HostArgs.Host(w, nameof(w));
        HostArgs.RequireRank(w, nameof(w), 2);
        HostArgs.RequireContiguous(w, nameof(w));
        HostArgs.RequireRank(x, nameof(x), 2);
        int m = x.Dim(0), k = x.Dim(1), n = w.Dim(0);
        if (w.Dim(1) != k) throw new ArgumentException($"w {w.ShapeString} does not match x {x.ShapeString}: expected [N, {k}]", nameof(w));
        float* xp = HostArgs.Matrix(x, nameof(x), m, k, out long ldx);
        float* yp = HostArgs.Matrix(y, nameof(y), m, n, out long ldy);
        HostArgs.RequireDisjoint(y, nameof(y), x, nameof(x));
        HostArgs.RequireDisjoint(y, nameof(y), w, nameof(w));
        float[]? b = bias is null ? null : HostArgs.Vector(bias, nameof(bias), n);
        float* rp = HostArgs.Matrix(residual, nameof(residual), m, n, out long ldr);
        float[] gb = HostArgs.Vector(gateBase, nameof(gateBase), n);
        int g = RowSets.Count(gate, nameof(gate), n);
        float* gp = HostArgs.Matrix(gate, nameof(gate), g, n, out long ldg);
        RowSets.Check(rowSets, m, g);
        if (m == 0 || n == 0) return;
        float* snapshot = null;
        try
        {
            if (residual.Storage == y.Storage)
            {
                // y holds partial sums before the epilogue reads the residual: keep a copy when they share memory.
                snapshot = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)m * (nuint)n * 4, 64);
                for (int r = 0; r < m; r++) Buffer.MemoryCopy(rp + r * ldr, snapshot + (long)r * n, 4L * n, 4L * n);
                rp = snapshot;
                ldr = n;
            }
            fixed (int* sets = rowSets)
                CpuGemm.Run(this, xp, ldx, w, yp, ldy, m, n, k, new GemmTail(GemmEpilogue.GatedResidual, b, rp, ldr, gb, gp, ldg, sets));
        }
        finally
        {
            if (snapshot != null) System.Runtime.InteropServices.NativeMemory.AlignedFree(snapshot);
        }
    }
}
