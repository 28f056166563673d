using Sora.Runtime;

namespace Sora.Native.Wan.Transformer;

/// <summary>
/// The timestep conditioning of one forward pass for G distinct timesteps: temb [G, D] (output head) and
/// timestep_proj [G, 6·D] (blocks), and the set of each row of the packed batch. Null row sets mean one timestep
/// for every row (G = 1: the scalar-timestep path).
/// </summary>
internal sealed record TimestepConditioning(Tensor Temb, Tensor Proj, int[]? RowSets) : IDisposable
{
    public void Dispose()
    {
        Temb.Dispose();
        Proj.Dispose();
    }
}

/// <summary>
/// A residual gate: one vector <see cref="Base"/> [D] for every row, or per row r the sum
/// Base + PerSet[RowSets[r]] with PerSet [G, D] (per-token timesteps).
/// </summary>
internal sealed record Gate(Tensor Base, Tensor? PerSet = null, ReadOnlyMemory<int> RowSets = default)
{
    /// <summary>The gate of rows [start, start + count) of the residual stream.</summary>
    public Gate Rows(int start, int count) => PerSet is null ? this : this with { RowSets = RowSets.Slice(start, count) };
}

/// <summary>
/// Modulation vectors j = table[j] + perSet(j) of a block (perSet(j) = timestep_proj[:, j·D:(j+1)·D]) or of the
/// output head (perSet(j) = temb). With one timestep the sums are formed once and the plain AdaLN and gated-GEMM
/// ops run; with row sets nothing [rows, D] is materialised: the per-row kernels add table and set rows themselves.
/// </summary>
internal sealed class Modulation : IDisposable
{
    private readonly IBackend _backend;
    private readonly int _dim;
    private readonly Tensor? _sum;
    private readonly Tensor? _table;
    private readonly Func<int, Tensor>? _perSet;
    private readonly int[]? _rowSets;

    private Modulation(IBackend backend, int dim, Tensor sum)
    {
        _backend = backend;
        _dim = dim;
        _sum = sum;
    }

    private Modulation(IBackend backend, int dim, Tensor table, Func<int, Tensor> perSet, int[] rowSets)
    {
        _backend = backend;
        _dim = dim;
        _table = table;
        _perSet = perSet;
        _rowSets = rowSets;
    }

    /// <summary>(shift, scale, gate, c_shift, c_scale, c_gate) of a block: table [6, D] + timestep_proj viewed [G, 6, D].</summary>
    public static Modulation Block(IBackend backend, Tensor table, TimestepConditioning time, int dim)
    {
        if (time.RowSets is not null)
            return new Modulation(backend, dim, table, j => time.Proj.Slice(1, j * dim, dim), time.RowSets);
        var sum = backend.Allocate(DType.F32, 6, dim);
        backend.Add(table, time.Proj.Reshape(6, dim), sum);
        return new Modulation(backend, dim, sum);
    }

    /// <summary>(shift, scale) of the output head: table [2, D] + temb (the same temb for both).</summary>
    public static Modulation Head(IBackend backend, Tensor table, TimestepConditioning time, int dim)
    {
        if (time.RowSets is not null) return new Modulation(backend, dim, table, _ => time.Temb, time.RowSets);
        var sum = backend.Allocate(DType.F32, 2, dim);
        backend.Add(table.Slice(0, 0, 1), time.Temb, sum.Slice(0, 0, 1));
        backend.Add(table.Slice(0, 1, 1), time.Temb, sum.Slice(0, 1, 1));
        return new Modulation(backend, dim, sum);
    }

    /// <summary>y = LayerNorm(x)·(1 + vector[scale]) + vector[shift], per row.</summary>
    public void AdaLn(Tensor x, int shift, int scale, float eps, Tensor y)
    {
        if (_sum is not null) _backend.AdaLnModulate(x, Vector(_sum, shift), Vector(_sum, scale), eps, y);
        else _backend.AdaLnModulateRows(x, Vector(_table!, shift), _perSet!(shift), Vector(_table!, scale), _perSet!(scale), _rowSets, eps, y);
    }

    public Gate Gate(int j) => _sum is not null ? new Gate(Vector(_sum, j)) : new Gate(Vector(_table!, j), _perSet!(j), _rowSets);

    private Tensor Vector(Tensor rows, int j) => rows.Slice(0, j, 1).Reshape(_dim);

    public void Dispose() => _sum?.Dispose();
}
