using Sora.Runtime;

namespace Sora.Native.Loading;

/// <summary>
/// A tensor source seen under the model's names: each stored name loses the file's common prefix and goes through
/// a <see cref="NameTable"/>, so an original-layout file binds to the unchanged model classes. Tensors are not
/// copied; names no entry maps keep their stored name (the binding then reports them as unexpected). Owns the
/// inner source.
/// </summary>
public sealed class RenamedSource : ITensorSource, IQuantizedTensorSource, IAdapterSource
{
    private readonly ITensorSource _inner;
    private readonly Dictionary<string, string> _stored = new(StringComparer.Ordinal);

    public RenamedSource(ITensorSource inner, NameTable table)
    {
        _inner = inner;
        var names = inner.Names.ToList();
        Prefix = table.CommonPrefix(names);
        foreach (string stored in names)
        {
            string bare = stored[Prefix.Length..];
            string model = table.ToModel(bare) ?? bare;
            if (model != stored) Renamed++;
            if (!_stored.TryAdd(model, stored))
                throw new ModelLoadException($"{inner.FileOf(stored)}: tensors '{_stored[model]}' and '{stored}' both map to '{model}'");
        }
    }

    /// <summary>The prefix removed from every stored name ("" for none).</summary>
    public string Prefix { get; }

    /// <summary>How many stored names differ from the model's (0: the file already has the model's names).</summary>
    public int Renamed { get; }

    /// <summary>The source this view reads.</summary>
    public ITensorSource Inner => _inner;

    public string Source => _inner.Source;
    public IEnumerable<string> Names => _stored.Keys;
    public bool Contains(string name) => _stored.ContainsKey(name);
    public (DType DType, int[] Shape) Describe(string name) => _inner.Describe(StoredName(name));
    public Tensor Get(string name) => _inner.Get(StoredName(name));
    public string FileOf(string name) => _inner.FileOf(StoredName(name));
    public float? WeightScale(string name) => _inner.WeightScale(StoredName(name));

    public bool TryGetBlocks(string name, out Sora.Runtime.Gguf.GgmlType type, out ReadOnlyMemory<byte> blocks)
    {
        (type, blocks) = (default, default);
        return _inner is IQuantizedTensorSource q && q.TryGetBlocks(StoredName(name), out type, out blocks);
    }

    public IReadOnlyList<LowRankAdapter> AdaptersOf(string name) => _inner is IAdapterSource a ? a.AdaptersOf(StoredName(name)) : [];

    /// <summary>The name <paramref name="name"/> has in the file (for messages that quote the file's own key).</summary>
    public string StoredName(string name)
        => _stored.TryGetValue(name, out string? stored) ? stored : throw new ModelLoadException($"{Source}: no tensor '{name}'");

    public void Dispose() => _inner.Dispose();
}
