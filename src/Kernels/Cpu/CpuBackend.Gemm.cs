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
        int k = x.Dim(1), n = w.Dim(0);
        if (w.Dim(1) != k) throw new ArgumentException($"w {w.ShapeString} does not match x {x.ShapeString}: expected [N, {k}]", nameof(w));
        HostArgs.RequireDisjoint(y, nameof(y), w, nameof(w));
        Gemm(x, WeightRows.Dense(w, k), n, bias, y, epilogue, residual, gate);
    }

    public void Gemm(Tensor x, Weight w, Tensor? bias, Tensor y, GemmEpilogue epilogue = GemmEpilogue.None, Tensor? residual = null, Tensor? gate = null)
    {
        ArgumentNullException.ThrowIfNull(w);
        switch (w)
        {
            case DenseWeight d: Gemm(x, d.Matrix, bias, y, epilogue, residual, gate); return;
            case LoraWeight l: LowRankPath.Gemm(this, x, l, bias, y, epilogue, residual, gate); return;
        }
        HostArgs.RequireRank(x, nameof(x), 2);
        if (w.In != x.Dim(1)) throw new ArgumentException($"w [{w.Out}, {w.In}] ({w.Format}) does not match x {x.ShapeString}: expected [N, {x.Dim(1)}]", nameof(w));
        Gemm(x, WeightRows.Of(w, nameof(w)), w.Out, bias, y, epilogue, residual, gate);
    }

    /// <summary>The CPU backend reads the caller's memory in place (pinned, not copied).</summary>
    public DeviceBytes Upload(ReadOnlyMemory<byte> bytes) => new HostBytes(bytes);

    public void Dequantize(Weight w, Tensor y)
    {
        ArgumentNullException.ThrowIfNull(w);
        var rows = WeightRows.Of(w, nameof(w));
        float* yp = HostArgs.F32Dense(y, nameof(y));
        HostArgs.RequireShape(y, nameof(y), w.Out, w.In);
        For(w.Out, r => rows.Read(r, 0, w.In, yp + (long)r * w.In));
    }

    private void Gemm(Tensor x, WeightRows w, int n, Tensor? bias, Tensor y, GemmEpilogue epilogue, Tensor? residual, Tensor? gate)
    {
        int m = x.Dim(0), k = x.Dim(1);
        float* xp = HostArgs.Matrix(x, nameof(x), m, k, out long ldx);
        float* yp = HostArgs.Matrix(y, nameof(y), m, n, out long ldy);
        HostArgs.RequireDisjoint(y, nameof(y), x, nameof(x));
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
/// gate of row r is gate + gateSets[rowSets[r]] (rows ldg apart; see <see cref="IBackend.GemmGatedRows(Tensor, Tensor, Tensor?, Tensor, Tensor, Tensor, Tensor, ReadOnlySpan{int})"/>).
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
