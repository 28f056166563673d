using Sora.Runtime;
using Xunit;

namespace Sora.Tests.Runtime;

public sealed unsafe class HostMemoryPoolTests
{
    private static nint PointerOf(Tensor t) => (nint)((HostStorage)t.Storage).Pointer;

    [Fact]
    public void ReturnedBufferIsReusedForTheSameSizeClass()
    {
        using var pool = new HostMemoryPool();
        var a = pool.Rent(DType.F32, 16, 33);
        nint pa = PointerOf(a);
        Assert.Equal(0, pa % 64);
        a.Dispose();
        // 16·33·4 = 2112 bytes and 2·1050·2 = 4200 bytes: different classes, so b is new memory
        using var b = pool.Rent(DType.F16, 2, 1050);
        Assert.NotEqual(pa, PointerOf(b));
        // same byte size in another dtype and shape: same buffer comes back
        using var c = pool.Rent(DType.BF16, 2112 / 2);
        Assert.Equal(pa, PointerOf(c));
        Assert.Equal(new[] { 1056 }, c.Shape);
        Assert.Equal(DType.BF16, c.DType);
    }

    [Fact]
    public void RentedTensorsDoNotShareMemory()
    {
        using var pool = new HostMemoryPool();
        var tensors = Enumerable.Range(0, 8).Select(_ => pool.Rent(DType.F32, 100)).ToList();
        for (int i = 0; i < tensors.Count; i++) ((HostStorage)tensors[i].Storage).AsSpan<float>().Fill(i);
        for (int i = 0; i < tensors.Count; i++) Assert.All(tensors[i].ToFloatArray(), v => Assert.Equal(i, v));
        Assert.Equal(8, tensors.Select(PointerOf).Distinct().Count());
        foreach (var t in tensors) t.Dispose();
    }

    [Fact]
    public void TracksCurrentAndPeakBytes()
    {
        using var pool = new HostMemoryPool();
        Assert.Equal(0, pool.CurrentBytes);
        var a = pool.Rent(DType.F32, 1024);        // 4096 bytes, a class boundary
        var b = pool.Rent(DType.F32, 256);         // 1024 bytes
        Assert.Equal(5120, pool.CurrentBytes);
        Assert.Equal(5120, pool.PeakBytes);
        a.Dispose();
        a.Dispose(); // a second dispose must not return the buffer twice
        Assert.Equal(1024, pool.CurrentBytes);
        Assert.Equal(5120, pool.PeakBytes);
        Assert.Equal(4096, pool.IdleBytes);
        pool.ResetPeak();
        Assert.Equal(1024, pool.PeakBytes);
        using (pool.Rent(DType.F16, 1000)) { }     // 2000 bytes → class 2048
        Assert.Equal(1024 + 2048, pool.PeakBytes);
        Assert.Equal(new MemoryStats(1024, 3072), pool.Stats);
        b.Dispose();
        Assert.Equal(0, pool.CurrentBytes);
        pool.Trim();
        Assert.Equal(0, pool.IdleBytes);
    }

    [Theory]
    [InlineData(1, 64)]
    [InlineData(64, 64)]
    [InlineData(65, 72)]
    [InlineData(2000, 2048)]
    [InlineData(4097, 4608)]
    [InlineData(1_000_000, 1_048_576)]
    public void SizeClassesWasteAtMostOneEighth(long bytes, long expected)
    {
        Assert.Equal(expected, HostMemoryPool.SizeClass(bytes));
        Assert.True(expected - bytes <= Math.Max(64, bytes / 8));
    }

    [Fact]
    public void TensorsOutliveTheirPool()
    {
        var pool = new HostMemoryPool();
        var t = pool.Rent(DType.F32, 10);
        pool.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pool.Rent(DType.F32, 1));
        ((HostStorage)t.Storage).AsSpan<float>().Fill(1f); // still valid memory
        t.Dispose();
        Assert.Equal(0, pool.CurrentBytes);
        Assert.Equal(0, pool.IdleBytes);
    }

    [Fact]
    public void ConcurrentRentAndReturnKeepsTheBooksBalanced()
    {
        using var pool = new HostMemoryPool();
        Parallel.For(0, 4, w =>
        {
            var rng = new Random(w);
            for (int i = 0; i < 2000; i++)
            {
                using var t = pool.Rent(DType.F32, rng.Next(1, 5000));
                var span = ((HostStorage)t.Storage).AsSpan<float>();
                span[0] = w; span[^1] = w;
                Assert.Equal(w, span[0]);
                Assert.Equal(w, span[^1]);
            }
        });
        Assert.Equal(0, pool.CurrentBytes);
        Assert.True(pool.PeakBytes > 0);
    }
}
