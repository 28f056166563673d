using Sora.Runtime;

namespace Sora.Native.Loading;

/// <summary>
/// A tensor source with LoRAs merged into its dense weights at load: W' = W + Σ ΔW over every delta of the tensor
/// (see <see cref="LoraDelta"/>), computed on the backend (one GEMM with an add-residual epilogue per delta) the
/// first time the tensor is asked for. Merged tensors are F32 whatever W's dtype: rounding W + ΔW back to bf16
/// would drop the part of a small-strength ΔW that lies below half a bf16 step of W, so the LoRA would partly
/// vanish; the cost is 4 bytes per merged weight. Quantised weights (fp8, scaled or not, and GGUF blocks) are not
/// merged: they keep their memory and take the LoRA as a low-rank side path, handed to the quantised-weight binding
/// through <see cref="AdaptersOf"/> (y += s·(x·Downᵀ)·Upᵀ). Owns the inner source, the merged tensors and the adapters.
/// </summary>
public sealed class LoraMergedSource : ITensorSource, IQuantizedTensorSource, IAdapterSource
{
    private readonly ITensorSource _inner;
    private readonly IBackend _backend;
    private readonly Dictionary<string, List<LoraDelta>> _deltas = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Tensor> _merged = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LowRankAdapter[]> _adapters = new(StringComparer.Ordinal);

    public LoraMergedSource(ITensorSource inner, IEnumerable<LoraDelta> deltas, IBackend backend)
    {
        _inner = inner;
        _backend = backend;
        foreach (var d in deltas)
        {
            if (!_deltas.TryGetValue(d.Target, out var list)) _deltas[d.Target] = list = new();
            list.Add(d);
        }
    }

    /// <summary>The model tensors some LoRA changes.</summary>
    public IReadOnlyCollection<string> Targets => _deltas.Keys;

    /// <summary>The source this view reads.</summary>
    public ITensorSource Inner => _inner;

    public string Source => _inner.Source;
    public IEnumerable<string> Names => _inner.Names;
    public bool Contains(string name) => _inner.Contains(name);
    public string FileOf(string name) => _inner.FileOf(name);
    public float? WeightScale(string name) => _inner.WeightScale(name);

    public (DType DType, int[] Shape) Describe(string name)
    {
        var (dtype, shape) = _inner.Describe(name);
        return _deltas.ContainsKey(name) && !IsQuantised(name) ? (DType.F32, shape) : (dtype, shape);
    }

    public Tensor Get(string name)
    {
        if (!_deltas.TryGetValue(name, out var deltas) || IsQuantised(name)) return _inner.Get(name);
        if (!_merged.TryGetValue(name, out var merged)) _merged[name] = merged = Merge(name, deltas);
        return merged;
    }

    public bool TryGetBlocks(string name, out Sora.Runtime.Gguf.GgmlType type, out ReadOnlyMemory<byte> blocks)
    {
        (type, blocks) = (default, default);
        return _inner is IQuantizedTensorSource q && q.TryGetBlocks(name, out type, out blocks);
    }

    /// <summary>The LoRAs of a quantised weight as side paths (empty for a dense weight: its LoRAs are merged).</summary>
    public IReadOnlyList<LowRankAdapter> AdaptersOf(string name)
    {
        var inner = _inner is IAdapterSource a ? a.AdaptersOf(name) : [];
        if (!_deltas.TryGetValue(name, out var deltas) || !IsQuantised(name)) return inner;
        if (!_adapters.TryGetValue(name, out var adapters))
        {
            int columns = (int)(_inner.Describe(name).Shape.Skip(1).Aggregate(1L, (x, y) => x * y));
            adapters = deltas.Select(d => d.Diff is null
                ? new LowRankAdapter(Tensor.FromArray(d.Down!, [d.Rank, columns]), Tensor.FromArray(d.Up!, [d.Up!.Length / d.Rank, d.Rank]), d.Scale)
                : throw new NotSupportedException($"{d.File}: tensor '{d.Key}' is a full difference (.diff): it cannot be added to the quantised weight '{name}' without expanding it")).ToArray();
            _adapters[name] = adapters;
        }
        return [.. inner, .. adapters];
    }

    /// <summary>fp8 codes (scaled or not) or ggml blocks: weights whose LoRAs stay side paths.</summary>
    private bool IsQuantised(string name)
        => _inner.Describe(name).DType is DType.F8E4M3 or DType.F8E5M2 || _inner.WeightScale(name) is not null
           || (TensorSources.Underlying(_inner) is GgufSource gguf && !gguf.IsDense(TensorSources.StoredName(_inner, name)));

    private Tensor Merge(string name, List<LoraDelta> deltas)
    {
        var shape = _inner.Describe(name).Shape;
        int rows = shape.Length == 0 ? 1 : shape[0];
        int columns = (int)(shape.Aggregate(1L, (a, b) => a * b) / Math.Max(rows, 1));
        var owned = new List<Tensor>();
        Tensor Upload(float[] values, int r, int c)
        {
            using var host = Tensor.FromArray(values, [r, c]);
            var t = _backend.ToDevice(host);
            owned.Add(t);
            return t;
        }
        try
        {
            var w = Upload(_inner.Get(name).ToFloatArray(), rows, columns);
            foreach (var d in deltas)
            {
                var next = _backend.Allocate(DType.F32, rows, columns);
                owned.Add(next);
                if (d.Diff is { } diff)
                {
                    var delta = Upload(diff, rows, columns);
                    _backend.ScaleShift(delta, d.Scale, 0f, delta);
                    _backend.Add(w, delta, next);
                }
                else
                {
                    // ΔW[o, i] = Σ_r (s·up)[o, r] · down[r, i]: the GEMM's x = s·up [out, r], w = downᵀ [in, r].
                    var up = Upload(d.Up!.Select(v => v * d.Scale).ToArray(), rows, d.Rank);
                    var downT = Upload(Transpose(d.Down!, d.Rank, columns), columns, d.Rank);
                    _backend.Gemm(up, downT, null, next, GemmEpilogue.AddResidual, residual: w);
                }
                w = next;
            }
            return _backend.ToHost(w.Reshape(shape));
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
        }
    }

    private static float[] Transpose(float[] m, int rows, int columns)
    {
        var t = new float[m.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++)
                t[(long)c * rows + r] = m[(long)r * columns + c];
        return t;
    }

    public void Dispose()
    {
        foreach (var t in _merged.Values) t.Dispose();
        _merged.Clear();
        foreach (var a in _adapters.Values.SelectMany(x => x))
        {
            a.Down.Dispose();
            a.Up.Dispose();
        }
        _adapters.Clear();
        _inner.Dispose();
    }
}
