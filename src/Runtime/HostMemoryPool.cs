using System.Numerics;
using System.Runtime.InteropServices;

namespace Sora.Runtime;

/// <summary>
/// Pooled host memory for activations, so a denoising step reuses the buffers of the previous one instead of
/// allocating per op. <see cref="Rent"/> hands out an owning contiguous tensor; disposing it returns its buffer
/// to the pool. Buffers are grouped into size classes (eight per power of two, so at most 12.5% is wasted)
/// and a rent takes any idle buffer of its class. Thread-safe. <see cref="Trim"/> and <see cref="Dispose"/>
/// free the idle buffers; a tensor still rented when the pool is disposed frees its buffer on its own Dispose.
/// </summary>
public sealed unsafe class HostMemoryPool : IDisposable
{
    private const int Alignment = 64;
    private readonly Lock _lock = new();
    private readonly Dictionary<long, Stack<nint>> _idle = new();
    private long _currentBytes, _peakBytes, _idleBytes;
    private bool _disposed;

    /// <summary>Bytes of the buffers rented out now (size-class bytes, i.e. the memory really held).</summary>
    public long CurrentBytes { get { lock (_lock) return _currentBytes; } }

    /// <summary>The largest <see cref="CurrentBytes"/> since creation or the last <see cref="ResetPeak"/>.</summary>
    public long PeakBytes { get { lock (_lock) return _peakBytes; } }

    /// <summary>Bytes of the idle buffers kept for reuse.</summary>
    public long IdleBytes { get { lock (_lock) return _idleBytes; } }

    public MemoryStats Stats { get { lock (_lock) return new MemoryStats(_currentBytes, _peakBytes); } }

    public void ResetPeak()
    {
        lock (_lock) _peakBytes = _currentBytes;
    }

    /// <summary>
    /// A new contiguous host tensor of <paramref name="shape"/> whose Dispose returns the buffer to this pool.
    /// Contents are unspecified (a reused buffer keeps old values).
    /// </summary>
    public Tensor Rent(DType dtype, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long elements = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(", ", shape)}]", nameof(shape));
            elements = checked(elements * d);
        }
        long bytes = SizeClass(checked(elements * DTypes.SizeOf(dtype)));
        nint pointer = Take(bytes);
        var lease = new Lease(this, pointer, bytes);
        return new Tensor(HostStorage.Wrap(dtype, elements, (void*)pointer, lease), shape, ownsStorage: true);
    }

    /// <summary>Frees all idle buffers (rented ones stay valid and return to the pool as usual).</summary>
    public void Trim()
    {
        lock (_lock)
        {
            foreach (var stack in _idle.Values)
                while (stack.Count > 0) NativeMemory.AlignedFree((void*)stack.Pop());
            _idle.Clear();
            _idleBytes = 0;
        }
    }

    public void Dispose()
    {
        lock (_lock) _disposed = true;
        Trim();
    }

    /// <summary>
    /// The smallest size ≥ <paramref name="bytes"/> of the form m·2^k with 8 ≤ m &lt; 16 (at least 64 bytes), so sizes
    /// that differ a little share a class and idle memory stays within 12.5% of what was asked.
    /// </summary>
    public static long SizeClass(long bytes)
    {
        if (bytes <= Alignment) return Alignment;
        int shift = 63 - BitOperations.LeadingZeroCount((ulong)bytes) - 3; // keep the top 4 bits
        long step = 1L << shift;
        return checked((bytes + step - 1) & ~(step - 1));
    }

    private nint Take(long bytes)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            nint pointer;
            if (_idle.TryGetValue(bytes, out var stack) && stack.Count > 0)
            {
                pointer = stack.Pop();
                _idleBytes -= bytes;
            }
            else
            {
                pointer = (nint)NativeMemory.AlignedAlloc((nuint)bytes, Alignment);
            }
            _currentBytes += bytes;
            if (_currentBytes > _peakBytes) _peakBytes = _currentBytes;
            return pointer;
        }
    }

    private void Return(nint pointer, long bytes)
    {
        lock (_lock)
        {
            _currentBytes -= bytes;
            if (_disposed)
            {
                NativeMemory.AlignedFree((void*)pointer);
                return;
            }
            if (!_idle.TryGetValue(bytes, out var stack)) _idle[bytes] = stack = new Stack<nint>();
            stack.Push(pointer);
            _idleBytes += bytes;
        }
    }

    /// <summary>Owner object of a rented storage: returns the buffer once, when the storage is released.</summary>
    private sealed class Lease(HostMemoryPool pool, nint pointer, long bytes) : IDisposable
    {
        private int _returned;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _returned, 1) == 0) pool.Return(pointer, bytes);
        }
    }
}
