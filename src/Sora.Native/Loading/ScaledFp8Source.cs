using Sora.Runtime;

namespace Sora.Native.Loading;

/// <summary>
/// ComfyUI's "scaled fp8" files: each fp8 weight <c>L.weight</c> is stored with <c>L.scale_weight</c> (one float),
/// the weight's value being w = f8 · scale, and a marker tensor <c>scaled_fp8</c> flags the file. This view hides
/// the marker from the model's strict binding and pairs each scale with its weight: <see cref="ITensorSource.WeightScale"/>
/// hands it out, and the scale tensor stays visible under the weight's module name (<c>L.scale_weight</c>, renamed
/// with it), so the quantised-weight binding that reads it by name binds it with its weight, and a binding that
/// ignored it would be reported as leaving it unused rather than silently dropping the factor. A scale without its
/// weight, or that is not one finite non-zero float, is an error naming the file and tensor. Owns the inner source.
/// </summary>
public sealed class ScaledFp8Source : ITensorSource, IQuantizedTensorSource
{
    public const string Marker = "scaled_fp8";
    private const string ScaleSuffix = ".scale_weight";

    private readonly ITensorSource _inner;
    private readonly Dictionary<string, float> _scales = new(StringComparer.Ordinal);
    private readonly HashSet<string> _hidden = new(StringComparer.Ordinal);

    private ScaledFp8Source(ITensorSource inner)
    {
        _inner = inner;
        foreach (string name in inner.Names)
        {
            if (name == Marker || name.EndsWith("." + Marker, StringComparison.Ordinal))
            {
                _hidden.Add(name);
                continue;
            }
            if (!name.EndsWith(ScaleSuffix, StringComparison.Ordinal)) continue;
            string weight = name[..^ScaleSuffix.Length] + ".weight";
            if (!inner.Contains(weight))
                throw new ModelLoadException($"{inner.FileOf(name)}: tensor '{name}' scales '{weight}', which the file does not hold");
            _scales[weight] = ReadScale(inner, name);
        }
    }

    /// <summary>The source itself when it holds no scales and no marker; otherwise the scaled view of it.</summary>
    public static ITensorSource Wrap(ITensorSource inner)
    {
        bool scaled = inner.Names.Any(n => n == Marker || n.EndsWith("." + Marker, StringComparison.Ordinal) || n.EndsWith(ScaleSuffix, StringComparison.Ordinal));
        return scaled ? new ScaledFp8Source(inner) : inner;
    }

    /// <summary>Weights that carry a scale.</summary>
    public int ScaledCount => _scales.Count;

    /// <summary>The source this view reads.</summary>
    public ITensorSource Inner => _inner;

    public string Source => _inner.Source;
    public IEnumerable<string> Names => _inner.Names.Where(n => !_hidden.Contains(n));
    public bool Contains(string name) => !_hidden.Contains(name) && _inner.Contains(name);
    public (DType DType, int[] Shape) Describe(string name) => _inner.Describe(Visible(name));
    public Tensor Get(string name) => _inner.Get(Visible(name));
    public string FileOf(string name) => _inner.FileOf(name);
    public float? WeightScale(string name) => _scales.TryGetValue(name, out float s) ? s : _inner.WeightScale(name);

    public bool TryGetBlocks(string name, out Sora.Runtime.Gguf.GgmlType type, out ReadOnlyMemory<byte> blocks)
    {
        (type, blocks) = (default, default);
        return _inner is IQuantizedTensorSource q && q.TryGetBlocks(Visible(name), out type, out blocks);
    }

    private string Visible(string name)
        => _hidden.Contains(name) ? throw new ModelLoadException($"{_inner.FileOf(name)}: tensor '{name}' is the scaled-fp8 marker, not a weight") : name;

    private static float ReadScale(ITensorSource source, string name)
    {
        var (dtype, shape) = source.Describe(name);
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (count != 1 || dtype is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ModelLoadException($"{source.FileOf(name)}: tensor '{name}' is {DTypes.SafetensorsName(dtype)} [{string.Join(", ", shape)}], expected one float (F32 [1])");
        float scale = source.Get(name).ToFloatArray()[0];
        if (!float.IsFinite(scale) || scale == 0)
            throw new ModelLoadException($"{source.FileOf(name)}: tensor '{name}' = {scale} is not a finite non-zero scale");
        return scale;
    }

    public void Dispose() => _inner.Dispose();
}
