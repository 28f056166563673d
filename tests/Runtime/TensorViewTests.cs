using Sora.Runtime;
using Xunit;

namespace Sora.Tests.Runtime;

public sealed class TensorViewTests
{
    // element (i, j, k) of the [2, 3, 4] source holds 100i + 10j + k, so every expected value is computed by formula
    private static Tensor Source(DType dtype = DType.F32)
    {
        var data = new float[24];
        for (int i = 0; i < 2; i++) for (int j = 0; j < 3; j++) for (int k = 0; k < 4; k++) data[i * 12 + j * 4 + k] = 100 * i + 10 * j + k;
        return Tensor.FromArray(data, new[] { 2, 3, 4 }, dtype);
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void PermuteAndSliceReadThroughStrides(DType dtype)
    {
        using var t = Source(dtype);
        var p = t.Permute(2, 0, 1); // [4, 2, 3]: p[k, i, j] = t[i, j, k]
        Assert.Equal(new[] { 4, 2, 3 }, p.Shape);
        Assert.Equal(new long[] { 1, 12, 4 }, p.Strides);
        Assert.False(p.IsContiguous);
        var expected = new List<float>();
        for (int k = 0; k < 4; k++) for (int i = 0; i < 2; i++) for (int j = 0; j < 3; j++) expected.Add(100 * i + 10 * j + k);
        Assert.Equal(expected, p.ToFloatArray());

        var s = p.Slice(0, 1, 2).Slice(2, 2, 1); // k ∈ {1, 2}, j = 2
        Assert.Equal(new[] { 2, 2, 1 }, s.Shape);
        Assert.Equal(new float[] { 20 + 1, 120 + 1, 20 + 2, 120 + 2 }, s.ToFloatArray());
        Assert.Equal(0, t.Slice(1, 1, 0).ElementCount);
        Assert.Empty(t.Slice(1, 1, 0).ToFloatArray());
    }

    [Fact]
    public void ReshapeSharesStorageAndInfersOneDimension()
    {
        using var t = Source();
        var r = t.Reshape(6, -1);
        Assert.Equal(new[] { 6, 4 }, r.Shape);
        Assert.Same(t.Storage, r.Storage);
        Assert.Equal(t.ToFloatArray(), r.ToFloatArray());
        var row = t.Slice(0, 1, 1).Reshape(3, 4); // contiguous slice at an offset
        Assert.Equal(12, row.Offset);
        Assert.Equal(Enumerable.Range(0, 12).Select(x => 100f + 10 * (x / 4) + x % 4), row.ToFloatArray());
        ((HostStorage)t.Storage).AsSpan<float>()[13] = -5;
        Assert.Equal(-5, r.ToFloatArray()[13]);

        Assert.Throws<ArgumentException>(() => t.Reshape(5, -1));
        Assert.Throws<ArgumentException>(() => t.Reshape(4, 5));
        Assert.Throws<InvalidOperationException>(() => t.Permute(1, 0, 2).Reshape(24));
    }

    [Fact]
    public void InvalidViewsAreRejected()
    {
        using var t = Source();
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Slice(2, 3, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Slice(3, 0, 1));
        Assert.Throws<ArgumentException>(() => t.Permute(0, 0, 1));
        Assert.Throws<ArgumentException>(() => t.Permute(0, 1));
        Assert.Throws<ArgumentException>(() => new Tensor(t.Storage, new[] { 5, 5 }));
        Assert.Throws<ArgumentException>(() => new Tensor(t.Storage, new[] { 2 }, new long[] { 1 }, offset: 23));
        Assert.Throws<ArgumentException>(() => new Tensor(t.Storage, new[] { 3 }, new long[] { -1 }, offset: 1)); // reaches index -1
        Assert.Throws<ArgumentException>(() => new Tensor(t.Storage, new[] { 3, 2 }, new long[] { long.MaxValue / 2, 1 }));
        Assert.Throws<ArgumentException>(() => t.Reshape(-1, -1));
        Assert.Throws<ArgumentException>(() => t.Reshape(-2, -12));
        var reversed = new Tensor(t.Storage, new[] { 4 }, new long[] { -1 }, offset: 3); // negative strides inside the storage are fine
        Assert.Equal(new float[] { 3, 2, 1, 0 }, reversed.ToFloatArray());
    }
}
