using System.Buffers.Binary;

namespace Sora.Runtime.Safetensors;

/// <summary>Name, dtype, shape and byte range (relative to the data section) of one stored tensor.</summary>
public sealed record TensorEntry(string Name, DType DType, int[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// One .safetensors file, memory-mapped. Tensors are handed out lazily by name as host views into the
/// mapping (no copy): the file's pages are read only when touched. The header is validated completely on
/// <see cref="Open"/> (see <see cref="SafetensorsHeader"/>), so every later <see cref="Get"/> stays inside the file.
/// Disposing the file disposes the storages it handed out, so a late access fails with ObjectDisposedException
/// (for span users) instead of reading unmapped memory.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MappedFile _file;
    private readonly long _dataStart;
    private readonly Dictionary<string, TensorEntry> _entries;

    private SafetensorsFile(string path, MappedFile file, SafetensorsHeader header)
    {
        Path = path;
        _file = file;
        _dataStart = header.DataStart;
        _entries = header.Entries;
        Metadata = header.Metadata;
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensor names in header order.</summary>
    public IEnumerable<string> Names => _entries.Keys;
    public IReadOnlyCollection<TensorEntry> Entries => _entries.Values;
    public bool Contains(string name) => _entries.ContainsKey(name);

    public TensorEntry GetEntry(string name)
        => _entries.TryGetValue(name, out var e) ? e : throw new SafetensorsException(Path, name, "no such tensor in this file");

    public static SafetensorsFile Open(string path)
    {
        var file = MappedFile.Open(path, 8, length => $"file is {length} bytes, shorter than the 8-byte header length",
            (problem, cause) => new SafetensorsException(path, null, problem, cause));
        try
        {
            return new SafetensorsFile(path, file, SafetensorsHeader.Parse(path, file.Base, file.Length));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The tensor as a host view into the mapped file (valid while this file is open).</summary>
    public Tensor Get(string name)
    {
        var e = GetEntry(name);
        return new Tensor(_file.Storage(this, name, e.DType, e.ElementCount, _dataStart + e.Begin), e.Shape);
    }

    /// <summary>The stored bytes of a tensor (little-endian, C-contiguous), valid while this file is open.</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var e = GetEntry(name);
        return _file.Bytes(this, _dataStart + e.Begin, checked((int)(e.End - e.Begin)));
    }

    public void Dispose() => _file.Dispose();
}
