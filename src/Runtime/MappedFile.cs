using System.IO.MemoryMappedFiles;

namespace Sora.Runtime;

/// <summary>
/// A whole file mapped read-only, for the checkpoint readers (safetensors, GGUF): the pointer to its first byte,
/// and the host tensor storages handed out over it, which <see cref="Dispose"/> invalidates together with the
/// mapping, so a late access throws ObjectDisposedException instead of reading unmapped memory.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly Dictionary<string, HostStorage> _storages = new(StringComparer.Ordinal);

    private MappedFile(MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePtr, long length)
    {
        _map = map;
        _view = view;
        Base = basePtr;
        Length = length;
    }

    public byte* Base { get; }
    public long Length { get; }
    public bool IsDisposed { get; private set; }

    /// <summary>
    /// Maps <paramref name="path"/>; a missing, unreadable or unmappable file, or one shorter than
    /// <paramref name="minLength"/> (described by <paramref name="tooShort"/>), is <paramref name="error"/>(problem, cause).
    /// </summary>
    public static MappedFile Open(string path, long minLength, Func<long, string> tooShort, Func<string, Exception?, Exception> error)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw error("file not found", null);
        long length;
        try { length = new FileInfo(path).Length; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw error("cannot read the file: " + e.Message, e); }
        if (length < minLength) throw error(tooShort(length), null);

        MemoryMappedFile map;
        MemoryMappedViewAccessor view;
        try
        {
            map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            try { view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read); }
            catch { map.Dispose(); throw; }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw error("cannot map the file: " + e.Message, e); }

        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        return new MappedFile(map, view, p + view.PointerOffset, length);
    }

    /// <summary>A host storage over <paramref name="elements"/> values at byte <paramref name="offset"/>, one per <paramref name="key"/>; <paramref name="owner"/> names the disposed object.</summary>
    public HostStorage Storage(object owner, string key, DType dtype, long elements, long offset)
    {
        lock (_storages)
        {
            ObjectDisposedException.ThrowIf(IsDisposed, owner);
            if (!_storages.TryGetValue(key, out var storage))
                _storages[key] = storage = HostStorage.Wrap(dtype, elements, Base + offset);
            return storage;
        }
    }

    /// <summary><paramref name="count"/> bytes at <paramref name="offset"/>, valid while the file is mapped.</summary>
    public ReadOnlySpan<byte> Bytes(object owner, long offset, int count)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, owner);
        return new ReadOnlySpan<byte>(Base + offset, count);
    }

    public void Dispose()
    {
        lock (_storages)
        {
            if (IsDisposed) return;
            IsDisposed = true;
            foreach (var s in _storages.Values) s.Dispose();
            _storages.Clear();
        }
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
