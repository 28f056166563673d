using Sora.Kernels.Gpu;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Ilgpu;

[Collection(IlgpuCpuCollection.Name)]
[Trait("Backend", "IlgpuCpu")]
public class IlgpuElementwiseTests(IlgpuCpuFixture fixture)
{
    private readonly IlgpuBackend _backend = fixture.Backend;

    [Theory]
    [InlineData(1)]
    [InlineData(37)]
    public void Maps_match_reference(int n)
    {
        float[] a = Random(n, n, 4f), b = Random(n, n + 1, 4f);
        using var at = Upload(_backend, a, [n]);
        using var bt = Upload(_backend, b, [n]);
        void Check(Action<Tensor> op, double[] expected, string what)
        {
            using var y = Poisoned(_backend, n);
            op(y);
            AssertClose(expected, Download(_backend, y), 1e-5, what);
        }
        Check(y => _backend.GeluTanh(at, y), Reference.Map(D(a), Reference.GeluTanh), "gelu");
        Check(y => _backend.Silu(at, y), Reference.Map(D(a), Reference.Silu), "silu");
        Check(y => _backend.Add(at, bt, y), Reference.Zip(D(a), D(b), (p, q) => p + q), "add");
        Check(y => _backend.Mul(at, bt, y), Reference.Zip(D(a), D(b), (p, q) => p * q), "mul");
        Check(y => _backend.ScaleShift(at, 0.5f, -2f, y), Reference.Map(D(a), v => 0.5 * v - 2), "scaleshift");
        Check(y => _backend.Clamp(at, -1f, 1.5f, y), Reference.Map(D(a), v => Math.Clamp(v, -1, 1.5)), "clamp");
        Check(y => _backend.CfgCombine(at, bt, 5f, y), Reference.Zip(D(a), D(b), (u, c) => u + 5 * (c - u)), "cfg");
    }

    [Fact]
    public void EulerStep_updates_in_place()
    {
        float[] x = Random(29, 1), v = Random(29, 2);
        using var xt = Upload(_backend, x, [29]);
        using var vt = Upload(_backend, v, [29]);
        _backend.EulerStep(xt, vt, 0.8f, 0.55f);
        AssertClose(Reference.Zip(D(x), D(v), (p, q) => p + (0.55f - 0.8f) * q), Download(_backend, xt));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(11)]
    public void LinearCombination_sums_terms_even_when_y_is_one_of_them(int count)
    {
        int n = 23;
        var data = Enumerable.Range(0, count).Select(i => Random(n, 10 + i)).ToArray();
        var coefficients = Random(count, 99, 2f);
        var terms = data.Select(d => Upload(_backend, d, [n])).ToArray();
        try
        {
            var expected = Reference.LinearCombination(D(coefficients), data.Select(D).ToArray());
            using (var y = Poisoned(_backend, n))
            {
                _backend.LinearCombination(coefficients, terms, y);
                AssertClose(expected, Download(_backend, y));
            }
            _backend.LinearCombination(coefficients, terms, terms[^1]);
            AssertClose(expected, Download(_backend, terms[^1]), 1e-5, "y aliasing the last term");
        }
        finally
        {
            foreach (var t in terms) t.Dispose();
        }
    }

    [Fact]
    public void LinearCombination_of_no_terms_is_zero()
    {
        using var y = Poisoned(_backend, 5);
        _backend.LinearCombination([], [], y);
        Assert.All(Download(_backend, y), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void ChannelAffine_scales_and_shifts_each_channel()
    {
        float[] x = Random(3 * 10, 3);
        float[] scale = [0.5f, -2f, 3f], shift = [1f, 0.25f, -4f];
        using var xt = Upload(_backend, x, [3, 2, 5]);
        using var y = Poisoned(_backend, 3, 2, 5);
        _backend.ChannelAffine(xt, scale, shift, y);
        AssertClose(Reference.ChannelAffine(D(x), 3, D(scale), D(shift)), Download(_backend, y));
    }

    [Fact]
    public void Upsample2x_repeats_each_pixel()
    {
        float[] x = Random(2 * 2 * 3 * 5, 4);
        using var xt = Upload(_backend, x, [2, 2, 3, 5]);
        using var y = Poisoned(_backend, 2, 2, 6, 10);
        _backend.Upsample2x(xt, y);
        AssertExact(Reference.Upsample2x(D(x), 2, 2, 3, 5), Download(_backend, y));
    }

    [Theory]
    [InlineData(32, true, 0f)]
    [InlineData(33, false, 1f)]
    public void TimestepEmbedding_matches_diffusers(int dim, bool flip, float shift)
    {
        float[] ts = [999f, 500.5f, 3f, 0f];
        using var y = Poisoned(_backend, ts.Length, dim);
        _backend.TimestepEmbedding(ts, dim, flip, shift, y);
        // diffusers computes the angle in float32; the reference takes that angle and evaluates sin/cos in float64.
        int half = dim / 2;
        var expected = new double[ts.Length * dim];
        for (int b = 0; b < ts.Length; b++)
            for (int i = 0; i < half; i++)
            {
                float freq = MathF.Exp(-MathF.Log(10000f) * i / (half - shift));
                float angle = ts[b] * freq;
                expected[b * dim + i] = flip ? Math.Cos(angle) : Math.Sin(angle);
                expected[b * dim + half + i] = flip ? Math.Sin(angle) : Math.Cos(angle);
            }
        AssertClose(expected, Download(_backend, y));
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    [InlineData(DType.F16)]
    public void Embedding_gathers_rows_and_rejects_bad_ids(DType dtype)
    {
        int v = 20, d = 7;
        float[] table = Round(Random(v * d, 5), dtype);
        int[] ids = [3, 0, 19, 3, 11];
        using var tt = Upload(_backend, table, [v, d], dtype);
        using var y = Poisoned(_backend, ids.Length, d);
        _backend.Embedding(ids, tt, y);
        AssertExact(Reference.Embedding(ids, D(table), d), Download(_backend, y));
        using var y2 = Poisoned(_backend, 2, d);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _backend.Embedding([1, 20], tt, y2));
        Assert.Contains("ids[1] = 20", e.Message);
    }

    [Theory]
    [InlineData(4, 3, 4, 6, 1, 2, 2)]
    [InlineData(2, 4, 3, 3, 2, 1, 3)]
    public void Patchify_and_Unpatchify_follow_their_layouts(int c, int t, int h, int w, int pt, int ph, int pw)
    {
        int tokens = t / pt * (h / ph) * (w / pw), f = c * pt * ph * pw;
        float[] x = Random(c * t * h * w, 6);
        using var xt = Upload(_backend, x, [c, t, h, w]);
        using var y = Poisoned(_backend, tokens, f);
        _backend.Patchify(xt, pt, ph, pw, y);
        AssertExact(Reference.Patchify(D(x), c, t, h, w, pt, ph, pw), Download(_backend, y));

        float[] tok = Random(tokens * f, 7);
        using var tt = Upload(_backend, tok, [tokens, f]);
        using var back = Poisoned(_backend, c, t, h, w);
        _backend.Unpatchify(tt, pt, ph, pw, back);
        AssertExact(Reference.Unpatchify(D(tok), c, t, h, w, pt, ph, pw), Download(_backend, back));
    }

    [Fact]
    public void Copy_converts_dtypes_and_follows_strides_on_device_and_to_and_from_the_host()
    {
        float[] x = Random(4 * 6, 8);
        var expected = new double[24];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 4; j++) expected[i * 4 + j] = Round([x[j * 6 + i]], DType.BF16)[0];

        // device → device, transposed view, F32 → BF16
        using var src = Upload(_backend, x, [4, 6]);
        using var dst = _backend.Allocate(DType.BF16, 6, 4);
        _backend.Copy(src.Permute(1, 0), dst);
        AssertExact(expected, Download(_backend, dst));

        // host (transposed view) → device BF16, then device BF16 → host F32 in a transposed view
        using var host = Tensor.FromArray(x, [4, 6]);
        using var dst2 = _backend.Allocate(DType.BF16, 6, 4);
        _backend.Copy(host.Permute(1, 0), dst2);
        AssertExact(expected, Download(_backend, dst2));
        using var back = Tensor.ZerosHost(DType.F32, 4, 6);
        _backend.Copy(dst2, back.Permute(1, 0));
        var backExpected = new double[24];
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < 6; i++) backExpected[j * 6 + i] = expected[i * 4 + j];
        AssertExact(backExpected, back.ToFloatArray());

        // F16 round trip keeps the bits
        float[] h = Round(Random(10, 9), DType.F16);
        using var ht = Upload(_backend, h, [10], DType.F16);
        Assert.Equal(DType.F16, ht.DType);
        AssertExact(D(h), Download(_backend, ht));
    }

    [Fact]
    public void F16_widening_and_narrowing_match_System_Half_bit_for_bit()
    {
        // Kernels convert half precision with integer operations (no device Half type): check every pattern.
        const int patterns = 65536;
        using var host = Tensor.ZerosHost(DType.F16, patterns);
        var bits = ((HostStorage)host.Storage).AsSpan<ushort>();
        for (int i = 0; i < patterns; i++) bits[i] = (ushort)i;
        using var dev = _backend.ToDevice(host);
        using var wide = _backend.Allocate(DType.F32, patterns);
        _backend.Copy(dev, wide);
        float[] got = Download(_backend, wide);
        for (int i = 0; i < patterns; i++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)i);
            if (float.IsNaN(expected)) Assert.True(float.IsNaN(got[i]), $"pattern {i:X4} → {got[i]}");
            else Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(got[i]), $"pattern {i:X4}: {got[i]} ≠ {expected}");
        }

        // Narrowing: random bit patterns (NaN, infinities, subnormals, overflow) plus exact ties between halves.
        var rng = new Random(7);
        var floats = new float[20000];
        for (int i = 0; i < floats.Length; i++)
        {
            if (i % 2 == 0) floats[i] = BitConverter.Int32BitsToSingle(rng.Next() ^ (rng.Next(2) << 31));
            else
            {
                // a tie: the midpoint of two adjacent finite halves
                ushort h = (ushort)rng.Next(0, 0x7BFF);
                floats[i] = ((float)BitConverter.UInt16BitsToHalf(h) + (float)BitConverter.UInt16BitsToHalf((ushort)(h + 1))) / 2 * (i % 4 == 1 ? 1 : -1);
            }
        }
        using var src = Upload(_backend, floats, [floats.Length]);
        using var narrow = _backend.Allocate(DType.F16, floats.Length);
        _backend.Copy(src, narrow);
        using var back = _backend.ToHost(narrow);
        var result = ((HostStorage)back.Storage).AsSpan<ushort>();
        for (int i = 0; i < floats.Length; i++)
        {
            Half expected = (Half)floats[i];
            if (Half.IsNaN(expected)) Assert.True(Half.IsNaN(BitConverter.UInt16BitsToHalf(result[i])), $"{floats[i]} → {result[i]:X4}");
            else Assert.True(BitConverter.HalfToUInt16Bits(expected) == result[i], $"{floats[i]:R} → {result[i]:X4}, expected {BitConverter.HalfToUInt16Bits(expected):X4}");
        }
    }

    [Fact]
    public void Host_tensors_and_other_backends_tensors_are_rejected()
    {
        using var host = Tensor.FromArray(Random(4, 1), [4]);
        using var y = Poisoned(_backend, 4);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => _backend.Silu(host, y)).ParamName);
    }

    [Fact]
    public void Memory_tracks_live_bytes_and_peak_and_reuses_pooled_buffers()
    {
        using var backend = IlgpuBackend.CreateCpu();
        Assert.Equal("ilgpu-cpu", backend.Device.Kind);
        Assert.False(string.IsNullOrWhiteSpace(backend.Device.Name));
        var a = backend.Allocate(DType.F32, 1000);   // 4000 B → 4096 (256-byte classes)
        using (backend.Allocate(DType.BF16, 500))      // 1000 B → 1024
            Assert.Equal(new MemoryStats(5120, 5120), backend.Memory);
        Assert.Equal(new MemoryStats(4096, 5120), backend.Memory);
        Assert.Equal(1024, backend.PooledBytes);
        backend.ResetPeakMemory();
        a.Dispose();
        Assert.Equal(new MemoryStats(0, 4096), backend.Memory);
        using (backend.Allocate(DType.F32, 1024))
            Assert.Equal(1024, backend.PooledBytes); // the 4096-byte buffer came back from the pool
        backend.TrimPool();
        Assert.Equal(0, backend.PooledBytes);
    }

    [Fact]
    public void Tensors_may_outlive_their_backend_and_uses_after_dispose_fail_clearly()
    {
        var backend = IlgpuBackend.CreateCpu();
        var t = backend.Allocate(DType.F32, 10);
        backend.Dispose();
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => backend.Allocate(DType.F32, 1));
    }
}
