using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;

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
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _dataStart;
    private readonly Dictionary<string, TensorEntry> _entries;
    private readonly Dictionary<string, HostStorage> _storages = new(StringComparer.Ordinal);
    private bool _disposed;

    private SafetensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePtr, SafetensorsHeader header)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePtr;
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
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new SafetensorsException(path, null, "file not found");
        long length;
        try { length = new FileInfo(path).Length; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new SafetensorsException(path, null, "cannot read the file: " + e.Message, e); }
        if (length < 8) throw new SafetensorsException(path, null, $"file is {length} bytes, shorter than the 8-byte header length");

        MemoryMappedFile map;
        MemoryMappedViewAccessor view;
        try
        {
            map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            try { view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read); }
            catch { map.Dispose(); throw; }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new SafetensorsException(path, null, "cannot map the file: " + e.Message, e); }

        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        p += view.PointerOffset;
        try
        {
            var header = SafetensorsHeader.Parse(path, p, length);
            return new SafetensorsFile(path, map, view, p, header);
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
        HostStorage? storage;
        lock (_storages)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_storages.TryGetValue(name, out storage))
                _storages[name] = storage = HostStorage.Wrap(e.DType, e.ElementCount, _base + _dataStart + e.Begin);
        }
        return new Tensor(storage, e.Shape);
    }

    /// <summary>The stored bytes of a tensor (little-endian, C-contiguous), valid while this file is open.</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var e = GetEntry(name);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new ReadOnlySpan<byte>(_base + _dataStart + e.Begin, checked((int)(e.End - e.Begin)));
    }

    public void Dispose()
    {
        lock (_storages)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var s in _storages.Values) s.Dispose();
            _storages.Clear();
        }
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
