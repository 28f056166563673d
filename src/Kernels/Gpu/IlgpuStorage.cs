using ILGPU;
using ILGPU.Runtime;
using Sora.Runtime;

namespace Sora.Kernels.Gpu;

/// <summary>
/// Device memory of the ILGPU backend: a byte buffer from the backend's pool, viewed as the storage dtype.
/// Disposing returns the buffer to the pool (ILGPU allocations are synchronous and unpooled).
/// </summary>
public sealed class IlgpuStorage : Storage
{
    private readonly DevicePool _pool;

    internal IlgpuStorage(DevicePool pool, MemoryBuffer1D<byte, Stride1D.Dense> buffer, DType dtype, long length, string location)
        : base(dtype, length)
    {
        _pool = pool;
        Buffer = buffer;
        Location = location;
    }

    internal MemoryBuffer1D<byte, Stride1D.Dense> Buffer { get; }

    public override string Location { get; }

    internal IlgpuBackend Owner => _pool.Owner;

    /// <summary>The whole buffer reinterpreted as elements of <typeparamref name="T"/>.</summary>
    internal ArrayView<T> View<T>() where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return ((ArrayView<byte>)Buffer.View).Cast<T>();
    }

    protected override void Release() => _pool.Return(Buffer, ByteLength);
}

/// <summary>Encoded weight bytes (ggml blocks) in a device buffer from the backend's pool.</summary>
internal sealed class IlgpuBytes(DevicePool pool, MemoryBuffer1D<byte, Stride1D.Dense> buffer, long length, string location) : DeviceBytes(length)
{
    public override string Location { get; } = location;

    internal IlgpuBackend Owner => pool.Owner;

    internal ArrayView<byte> View => buffer.View.SubView(0, Math.Max(1, Length));

    protected override void Release() => pool.Return(buffer, Math.Max(1, Length));
}

/// <summary>
/// Reuses device buffers by size class (rounded up to 256 bytes, so a diffusion step's repeated shapes hit
/// the same classes) and tracks the bytes held by live tensors.
/// </summary>
internal sealed class DevicePool(IlgpuBackend owner, Accelerator accelerator) : IDisposable
{
    private const long Granule = 256;
    private readonly Dictionary<long, Stack<MemoryBuffer1D<byte, Stride1D.Dense>>> _free = new();
    private readonly object _lock = new();
    private long _currentBytes, _peakBytes, _cachedBytes;
    private bool _disposed;

    public IlgpuBackend Owner { get; } = owner;

    public static long SizeClass(long bytes) => Math.Max(Granule, (bytes + Granule - 1) / Granule * Granule);

    public MemoryBuffer1D<byte, Stride1D.Dense> Rent(long bytes)
    {
        long size = SizeClass(bytes);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _currentBytes += size;
            _peakBytes = Math.Max(_peakBytes, _currentBytes);
            if (_free.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                _cachedBytes -= size;
                return stack.Pop();
            }
        }
        try
        {
            return accelerator.Allocate1D<byte>(size);
        }
        catch (Exception)
        {
            lock (_lock) _currentBytes -= size;
            // Freeing cached buffers may make room; retry once before giving up.
            Trim();
            try
            {
                var buffer = accelerator.Allocate1D<byte>(size);
                lock (_lock) _currentBytes += size;
                return buffer;
            }
            catch (Exception again)
            {
                throw new OutOfMemoryException($"{accelerator.Name}: cannot allocate {size} bytes ({Stats.CurrentBytes} in use): {again.Message}", again);
            }
        }
    }

    public void Return(MemoryBuffer1D<byte, Stride1D.Dense> buffer, long bytes)
    {
        long size = SizeClass(bytes);
        lock (_lock)
        {
            _currentBytes -= size;
            if (_disposed)
            {
                buffer.Dispose();
                return;
            }
            if (!_free.TryGetValue(size, out var stack)) _free[size] = stack = new();
            stack.Push(buffer);
            _cachedBytes += size;
        }
    }

    public MemoryStats Stats
    {
        get { lock (_lock) return new MemoryStats(_currentBytes, _peakBytes); }
    }

    /// <summary>Bytes held by the pool for reuse (not counted in <see cref="Stats"/>).</summary>
    public long CachedBytes
    {
        get { lock (_lock) return _cachedBytes; }
    }

    public void ResetPeak()
    {
        lock (_lock) _peakBytes = _currentBytes;
    }

    /// <summary>Frees every cached buffer.</summary>
    public void Trim()
    {
        lock (_lock)
        {
            foreach (var stack in _free.Values)
                while (stack.Count > 0) stack.Pop().Dispose();
            _free.Clear();
            _cachedBytes = 0;
        }
    }

    public void Dispose()
    {
        Trim();
        lock (_lock) _disposed = true;
    }
}
