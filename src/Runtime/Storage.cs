using System.Runtime.InteropServices;

namespace Sora.Runtime;

/// <summary>A flat buffer of elements of one dtype, owned by a device. Tensors are views over storages.</summary>
public abstract class Storage : IDisposable
{
    protected Storage(DType dtype, long length)
    {
        DType = dtype;
        Length = length;
    }

    public DType DType { get; }

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    public long ByteLength => Length * DTypes.SizeOf(DType);

    /// <summary>Where the bytes live, e.g. "host" or "cuda:0".</summary>
    public abstract string Location { get; }

    public bool IsDisposed { get; private set; }

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Release();
        GC.SuppressFinalize(this);
    }

    protected abstract void Release();
}

/// <summary>
/// Host memory: either owned native memory (64-byte aligned), or a window into memory someone else owns
/// (a memory-mapped safetensors file). The managed CPU backend computes directly on host storage.
/// </summary>
public sealed unsafe class HostStorage : Storage
{
    private readonly IDisposable? _owner;
    private readonly bool _ownsPointer;
    private readonly Action<HostStorage>? _onRelease;

    private HostStorage(DType dtype, long length, void* pointer, bool ownsPointer, IDisposable? owner, Action<HostStorage>? onRelease)
        : base(dtype, length)
    {
        Pointer = pointer;
        _ownsPointer = ownsPointer;
        _owner = owner;
        _onRelease = onRelease;
    }

    public void* Pointer { get; }

    public override string Location => "host";

    /// <summary>Allocates zero-initialised, 64-byte aligned native memory.</summary>
    public static HostStorage Allocate(DType dtype, long length, Action<HostStorage>? onRelease = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        nuint bytes = (nuint)Math.Max(1, length * DTypes.SizeOf(dtype));
        void* p = NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(p, bytes);
        return new HostStorage(dtype, length, p, ownsPointer: true, owner: null, onRelease);
    }

    /// <summary>Wraps memory owned elsewhere; <paramref name="owner"/> (if any) is kept alive and disposed with this storage.</summary>
    public static HostStorage Wrap(DType dtype, long length, void* pointer, IDisposable? owner = null)
        => new(dtype, length, pointer, ownsPointer: false, owner, onRelease: null);

    public Span<T> AsSpan<T>() where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return new Span<T>(Pointer, checked((int)(ByteLength / sizeof(T))));
    }

    protected override void Release()
    {
        _onRelease?.Invoke(this);
        if (_ownsPointer) NativeMemory.AlignedFree(Pointer);
        _owner?.Dispose();
    }
}
