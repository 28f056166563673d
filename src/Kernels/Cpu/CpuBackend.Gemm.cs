using Sora.Runtime;

namespace Sora.Kernels.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void Gemm(Tensor x, Tensor w, Tensor? bias, Tensor y, GemmEpilogue epilogue = GemmEpilogue.None, Tensor? residual = null, Tensor? gate = null)
    {
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
        float* rp = null;
        long ldr = 0;
        float[]? g = null;
        switch (epilogue)
        {
            case GemmEpilogue.None or GemmEpilogue.GeluTanh or GemmEpilogue.Silu:
                break;
            case GemmEpilogue.AddResidual or GemmEpilogue.GatedResidual:
                if (residual is null) throw new ArgumentNullException(nameof(residual), $"epilogue {epilogue} needs a residual [{m}, {n}]");
                rp = HostArgs.Matrix(residual, nameof(residual), m, n, out ldr);
                if (epilogue == GemmEpilogue.GatedResidual)
                {
                    if (gate is null) throw new ArgumentNullException(nameof(gate), $"epilogue GatedResidual needs a gate [{n}]");
                    g = HostArgs.Vector(gate, nameof(gate), n);
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(epilogue), epilogue, "unknown GEMM epilogue");
        }
        if (m == 0 || n == 0) return;
        float* snapshot = null;
        try
        {
            if (rp != null && residual!.Storage == y.Storage)
            {
                // y holds partial sums before the epilogue reads the residual: keep a copy when they share memory.
                snapshot = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)m * (nuint)n * 4, 64);
                for (int r = 0; r < m; r++) Buffer.MemoryCopy(rp + r * ldr, snapshot + (long)r * n, 4L * n, 4L * n);
                rp = snapshot;
                ldr = n;
            }
            CpuGemm.Run(this, xp, ldx, w, yp, ldy, m, n, k, new GemmTail(epilogue, b, rp, ldr, g));
        }
        finally
        {
            if (snapshot != null) System.Runtime.InteropServices.NativeMemory.AlignedFree(snapshot);
        }
    }
}

/// <summary>
/// The fused epilogue of a GEMM, applied to finished rows of y. With <paramref name="rowSets"/> the GatedResidual
/// gate of row r is gate + gateSets[rowSets[r]] (rows ldg apart; see <see cref="IBackend.GemmGatedRows"/>).
/// </summary>
internal readonly unsafe struct GemmTail(GemmEpilogue epilogue, float[]? bias, float* residual, long ldr, float[]? gate,
    float* gateSets = null, long ldg = 0, int* rowSets = null)
{
    /// <summary>Columns of the summed per-row gate built at a time (a stack buffer).</summary>
    private const int GateChunk = 256;

    public GemmEpilogue Epilogue { get; } = epilogue;
    public float[]? Bias { get; } = bias;

    /// <summary>Finishes y[row, n0 .. n0+count) (holding x·Wᵀ) in place.</summary>
    public void Apply(float* yRow, int row, int n0, int count)
    {
        float* y = yRow + n0;
        if (Bias is not null)
            fixed (float* b = Bias)
                CpuVector.AddInPlace(y, b + n0, count);
        switch (Epilogue)
        {
            case GemmEpilogue.GeluTanh: CpuVector.GeluTanh(y, y, count); break;
            case GemmEpilogue.Silu: CpuVector.Silu(y, y, count); break;
            case GemmEpilogue.AddResidual:
                CpuVector.Add(residual + row * ldr + n0, y, y, count);
                break;
            case GemmEpilogue.GatedResidual when rowSets != null:
                {
                    float* sum = stackalloc float[GateChunk];
                    float* set = gateSets + rowSets[row] * ldg + n0;
                    float* r = residual + row * ldr + n0;
                    fixed (float* g = gate)
                        for (int c = 0; c < count; c += GateChunk)
                        {
                            int len = Math.Min(GateChunk, count - c);
                            CpuVector.Add(g + n0 + c, set + c, sum, len);
                            CpuVector.MulAdd(y + c, sum, r + c, y + c, len);
                        }
                    break;
                }
            case GemmEpilogue.GatedResidual:
                fixed (float* g = gate)
                    CpuVector.MulAdd(y, g + n0, residual + row * ldr + n0, y, count);
                break;
        }
    }
}
