using System.IO.MemoryMappedFiles;
using System.Text.Json;

namespace Sora.Runtime.Safetensors;

/// <summary>Name, dtype, shape and byte range (relative to the data section) of one stored tensor.</summary>
public sealed record TensorEntry(string Name, DType DType, int[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// One .safetensors file, memory-mapped. Tensors are handed out lazily by name as host views into the
/// mapping (no copy): the file's pages are read only when touched.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly long _dataStart;
    private readonly Dictionary<string, TensorEntry> _entries;

    private SafetensorsFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePtr, long dataStart,
        Dictionary<string, TensorEntry> entries, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePtr;
        _dataStart = dataStart;
        _entries = entries;
        Metadata = metadata;
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public IEnumerable<string> Names => _entries.Keys;
    public IReadOnlyCollection<TensorEntry> Entries => _entries.Values;
    public bool Contains(string name) => _entries.ContainsKey(name);

    public TensorEntry GetEntry(string name)
        => _entries.TryGetValue(name, out var e) ? e : throw new SafetensorsException(Path, name, "no such tensor in this file");

    public static SafetensorsFile Open(string path)
    {
        long length;
        try { length = new FileInfo(path).Length; }
        catch (Exception e) { throw new SafetensorsException(path, null, "cannot read the file: " + e.Message, e); }
        if (!File.Exists(path)) throw new SafetensorsException(path, null, "file not found");
        if (length < 8) throw new SafetensorsException(path, null, $"file is {length} bytes, shorter than the 8-byte header length");

        MemoryMappedFile map;
        try { map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read); }
        catch (Exception e) { throw new SafetensorsException(path, null, "cannot map the file: " + e.Message, e); }
        var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        p += view.PointerOffset;
        try
        {
            var (entries, metadata, dataStart) = SafetensorsHeader.Parse(path, new ReadOnlySpan<byte>(p, (int)Math.Min(length, int.MaxValue)), length);
            return new SafetensorsFile(path, map, view, p, dataStart, entries, metadata);
        }
        catch
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
            view.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>The tensor as a host view into the mapped file (valid while this file is open).</summary>
    public Tensor Get(string name)
    {
        var e = GetEntry(name);
        var storage = HostStorage.Wrap(e.DType, e.ElementCount, _base + _dataStart + e.Begin);
        return new Tensor(storage, e.Shape);
    }

    public void Dispose()
    {
        if (_view is null) return;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map?.Dispose();
    }
}

internal static class SafetensorsHeader
{
    internal const long MaxHeaderBytes = 100L * 1024 * 1024;

    public static (Dictionary<string, TensorEntry>, IReadOnlyDictionary<string, string>, long) Parse(string path, ReadOnlySpan<byte> file, long fileLength)
    {
        ulong headerLength = BitConverter.ToUInt64(file[..8]);
        if (headerLength > MaxHeaderBytes || (long)headerLength > fileLength - 8)
            throw new SafetensorsException(path, null, $"header length {headerLength} exceeds the file ({fileLength} bytes) or the {MaxHeaderBytes}-byte limit");
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(file.Slice(8, (int)headerLength).ToArray()); }
        catch (JsonException e) { throw new SafetensorsException(path, null, "header is not valid JSON: " + e.Message, e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new SafetensorsException(path, null, "header is not a JSON object");
            var entries = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>();
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new SafetensorsException(path, null, "__metadata__ is not an object");
                    foreach (var m in prop.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw new SafetensorsException(path, null, $"metadata '{m.Name}' is not a string");
                    continue;
                }
                if (entries.ContainsKey(prop.Name)) throw new SafetensorsException(path, prop.Name, "duplicate tensor name");
                entries[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataLength);
            }
            var sorted = entries.Values.OrderBy(e => e.Begin).ToList();
            for (int i = 1; i < sorted.Count; i++)
                if (sorted[i].Begin < sorted[i - 1].End)
                    throw new SafetensorsException(path, sorted[i].Name, $"data range overlaps tensor '{sorted[i - 1].Name}'");
            return (entries, metadata, dataStart);
        }
    }

    private static TensorEntry ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new SafetensorsException(path, name, "entry is not an object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw new SafetensorsException(path, name, "missing dtype");
        string dtypeName = dt.GetString()!;
        if (!DTypes.TryParseSafetensorsName(dtypeName, out var dtype)) throw new SafetensorsException(path, name, $"dtype {dtypeName} is not supported (F32, F16, BF16 are)");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw new SafetensorsException(path, name, "missing shape");
        var shape = new List<int>();
        long elements = 1;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0 || v > int.MaxValue)
                throw new SafetensorsException(path, name, "shape entries must be non-negative integers");
            shape.Add((int)v);
            elements = v == 0 ? 0 : (elements > long.MaxValue / v ? throw new SafetensorsException(path, name, "shape too large") : elements * v);
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new SafetensorsException(path, name, "data_offsets must be [begin, end]");
        if (!off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new SafetensorsException(path, name, "data_offsets must be integers with 0 <= begin <= end");
        if (end > dataLength) throw new SafetensorsException(path, name, $"data [{begin}, {end}) runs past the data section of {dataLength} bytes (truncated file?)");
        if (elements > long.MaxValue / 4 || elements * DTypes.SizeOf(dtype) != end - begin)
            throw new SafetensorsException(path, name, $"shape [{string.Join(", ", shape)}] of {dtypeName} needs {elements * DTypes.SizeOf(dtype)} bytes but data_offsets give {end - begin}");
        return new TensorEntry(name, dtype, shape.ToArray(), begin, end);
    }
}
