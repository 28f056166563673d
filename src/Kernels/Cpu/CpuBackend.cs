using Sora.Runtime;

namespace Sora.Kernels.Cpu;

/// <summary>
/// The managed CPU backend: host tensors are its device tensors, every op runs on this process's threads
/// (rows split across <see cref="Threads"/> workers). Weights may be F32, F16 or BF16; they are converted
/// to float32 while being read. Each op family lives in its own partial file.
/// </summary>
public sealed unsafe partial class CpuBackend : IBackend
{
    private readonly ParallelOptions _parallel;
    private readonly HostMemoryPool _pool = new();

    /// <param name="threads">Worker threads; 0 means <see cref="Environment.ProcessorCount"/>.</param>
    public CpuBackend(int threads = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        Threads = threads == 0 ? Environment.ProcessorCount : threads;
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = Threads };
        Device = new DeviceInfo("cpu", CpuInfo.ModelName(), "cpu", CpuInfo.TotalMemoryBytes());
    }

    public DeviceInfo Device { get; }

    public int Threads { get; }

    // ---- memory ------------------------------------------------------------------------------------

    /// <summary>From this backend's <see cref="HostMemoryPool"/>: a denoising step reuses the previous step's buffers.</summary>
    public Tensor Allocate(DType dtype, params int[] shape) => _pool.Rent(dtype, shape);

    public Tensor ToDevice(Tensor host)
    {
        HostArgs.Host(host, nameof(host));
        var t = Allocate(host.DType, host.Shape);
        Copy(host, t);
        return t;
    }

    public Tensor ToHost(Tensor tensor)
    {
        HostArgs.Host(tensor, nameof(tensor));
        var t = Tensor.ZerosHost(tensor.DType, tensor.Shape);
        Copy(tensor, t);
        return t;
    }

    public void Copy(Tensor src, Tensor dst)
    {
        var s = HostArgs.Host(src, nameof(src));
        var d = HostArgs.Host(dst, nameof(dst));
        if (!src.Shape.AsSpan().SequenceEqual(dst.Shape))
            throw new ArgumentException($"Copy needs equal shapes: src {src.ShapeString}, dst {dst.ShapeString}", nameof(dst));
        if (src.ElementCount == 0) return;
        if (src.IsContiguous && dst.IsContiguous && src.DType == dst.DType)
        {
            long bytes = src.ElementCount * DTypes.SizeOf(src.DType);
            int size = DTypes.SizeOf(src.DType);
            Buffer.MemoryCopy((byte*)s.Pointer + src.Offset * size, (byte*)d.Pointer + dst.Offset * size, bytes, bytes);
            return;
        }
        CpuCopy.Strided(this, s, src, d, dst);
    }

    public MemoryStats Memory => _pool.Stats;

    public void ResetPeakMemory() => _pool.ResetPeak();
    public long PooledBytes => _pool.IdleBytes;
    public void TrimPool() => _pool.Trim();

    /// <summary>Ops complete before they return; nothing to wait for.</summary>
    public void Synchronize() { }

    /// <summary>Frees the pool's idle buffers; tensors still alive free theirs when disposed.</summary>
    public void Dispose() => _pool.Dispose();

    // ---- threading -----------------------------------------------------------------------------------

    /// <summary>Runs body(i) for i in [0, count) on up to <see cref="Threads"/> workers.</summary>
    internal void For(int count, Action<int> body)
    {
        if (count <= 0) return;
        if (count == 1 || Threads == 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        Parallel.For(0, count, _parallel, body);
    }

    /// <summary>
    /// Splits [0, n) into contiguous ranges of at least <paramref name="grain"/> items (a few per worker, so
    /// uneven progress balances) and runs body(start, end) on each.
    /// </summary>
    internal void ForRanges(long n, long grain, Action<long, long> body)
    {
        if (n <= 0) return;
        long parts = Math.Clamp(n / Math.Max(1, grain), 1, Threads * 4L);
        if (parts == 1 || Threads == 1)
        {
            body(0, n);
            return;
        }
        For((int)parts, p => body(n * p / parts, n * (p + 1) / parts));
    }
}
