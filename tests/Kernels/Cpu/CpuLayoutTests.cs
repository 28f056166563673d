using Sora.Kernels.Cpu;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Cpu;

public class CpuLayoutTests
{
    private static readonly CpuBackend Backend = new(2);

    [Theory]
    [InlineData(1, 1, 2)]
    [InlineData(26, 3, 128)]
    [InlineData(60, 2, 44)]
    public void ApplyRope_rotates_interleaved_pairs(int s, int h, int d)
    {
        int rows = 2 * s;
        float[] x = Random(rows * h * d, s + d), cos = Random(s * d / 2, 2), sin = Random(s * d / 2, 3);
        using var xt = Upload(Backend, x, [rows, h, d]);
        using var ct = Upload(Backend, cos, [s, d / 2]);
        using var st = Upload(Backend, sin, [s, d / 2]);
        Backend.ApplyRope(xt, ct, st);
        AssertClose(Reference.Rope(D(x), D(cos), D(sin), rows, h, d, s), Download(Backend, xt));
    }

    [Fact]
    public void Upsample2x_repeats_each_pixel()
    {
        float[] x = Random(3 * 2 * 5 * 7, 4);
        using var xt = Upload(Backend, x, [3, 2, 5, 7]);
        using var y = Poisoned(Backend, 3, 2, 10, 14);
        Backend.Upsample2x(xt, y);
        AssertExact(Reference.Upsample2x(D(x), 3, 2, 5, 7), Download(Backend, y));
    }

    [Theory]
    [InlineData(256, true, 0f)]
    [InlineData(33, false, 1f)]
    public void TimestepEmbedding_matches_diffusers(int dim, bool flip, float shift)
    {
        float[] ts = [999f, 500.5f, 3f, 0f];
        using var y = Poisoned(Backend, ts.Length, dim);
        Backend.TimestepEmbedding(ts, dim, flip, shift, y);
        // diffusers computes the angle in float32; the reference takes that angle and evaluates sin/cos in float64.
        int half = dim / 2;
        var expected = new double[ts.Length * dim];
        for (int b = 0; b < ts.Length; b++)
            for (int i = 0; i < half; i++)
            {
                float freq = MathF.Exp(-(float)Math.Log(10000) * i / (half - shift));
                float angle = ts[b] * freq;
                expected[b * dim + i] = flip ? Math.Cos(angle) : Math.Sin(angle);
                expected[b * dim + half + i] = flip ? Math.Sin(angle) : Math.Cos(angle);
            }
        AssertClose(expected, Download(Backend, y));
        AssertClose(Reference.TimestepEmbedding([3.0], dim, flip, shift), Download(Backend, y)[(2 * dim)..(3 * dim)], 1e-6);
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    [InlineData(DType.F16)]
    public void Embedding_gathers_rows_and_rejects_bad_ids(DType dtype)
    {
        int v = 50, d = 37;
        float[] table = Round(Random(v * d, 5), dtype);
        int[] ids = [3, 0, 49, 3, 17];
        using var tt = Upload(Backend, table, [v, d], dtype);
        using var y = Poisoned(Backend, ids.Length, d);
        Backend.Embedding(ids, tt, y);
        AssertExact(Reference.Embedding(ids, D(table), d), Download(Backend, y));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Backend.Embedding([1, 50], tt, Poisoned(Backend, 2, d)));
        Assert.Contains("ids[1] = 50", e.Message);
    }

    [Theory]
    [InlineData(16, 3, 6, 8, 1, 2, 2)]
    [InlineData(2, 4, 3, 3, 2, 1, 3)]
    public void Patchify_and_Unpatchify_follow_their_layouts(int c, int t, int h, int w, int pt, int ph, int pw)
    {
        int tokens = t / pt * (h / ph) * (w / pw), f = c * pt * ph * pw;
        float[] x = Random(c * t * h * w, 6);
        using var xt = Upload(Backend, x, [c, t, h, w]);
        using var y = Poisoned(Backend, tokens, f);
        Backend.Patchify(xt, pt, ph, pw, y);
        AssertExact(Reference.Patchify(D(x), c, t, h, w, pt, ph, pw), Download(Backend, y));

        float[] tok = Random(tokens * f, 7);
        using var tt = Upload(Backend, tok, [tokens, f]);
        using var back = Poisoned(Backend, c, t, h, w);
        Backend.Unpatchify(tt, pt, ph, pw, back);
        AssertExact(Reference.Unpatchify(D(tok), c, t, h, w, pt, ph, pw), Download(Backend, back));
    }

    [Fact]
    public void Copy_converts_dtypes_and_follows_strides()
    {
        float[] x = Random(4 * 6, 8);
        using var src = Upload(Backend, x, [4, 6]);
        using var dst = Backend.Allocate(DType.BF16, 6, 4);
        Backend.Copy(src.Permute(1, 0), dst);
        var expected = new double[24];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 4; j++) expected[i * 4 + j] = Round([x[j * 6 + i]], DType.BF16)[0];
        AssertExact(expected, Download(Backend, dst));
    }

    [Theory]
    [InlineData(DType.F32, DType.F32)]
    [InlineData(DType.BF16, DType.F32)]
    [InlineData(DType.F32, DType.F16)]
    public void Copy_of_frame_slices_in_both_directions(DType from, DType to)
    {
        int c = 3, t = 4, h = 5, w = 7;
        float[] x = Round(Random(c * t * h * w, 9), from);
        using var src = Upload(Backend, x, [c, t, h, w], from);
        using var frames = Backend.Allocate(to, c, 2, h, w);
        Backend.Copy(src.Slice(1, 1, 2), frames);
        var expected = new double[c * 2 * h * w];
        for (int ch = 0; ch < c; ch++)
            for (int f = 0; f < 2; f++)
                for (int i = 0; i < h * w; i++) expected[(ch * 2 + f) * h * w + i] = Round([x[(ch * t + 1 + f) * h * w + i]], to)[0];
        AssertExact(expected, Download(Backend, frames));

        using var back = Upload(Backend, Random(c * t * h * w, 10), [c, t, h, w], to);
        Backend.Copy(frames, back.Slice(1, 2, 2));
        float[] got = Download(Backend, back);
        for (int ch = 0; ch < c; ch++)
            for (int f = 0; f < 2; f++)
                for (int i = 0; i < h * w; i++) Assert.Equal((float)expected[(ch * 2 + f) * h * w + i], got[(ch * t + 2 + f) * h * w + i]);
    }

    [Fact]
    public void Memory_tracks_current_and_peak_bytes_and_device_names_the_cpu()
    {
        using var backend = new CpuBackend(1);
        Assert.Equal("cpu", backend.Device.Kind);
        Assert.False(string.IsNullOrWhiteSpace(backend.Device.Name));
        Assert.True(backend.Device.MemoryBytes > 0);
        // Allocations come from the backend's pool, which holds whole size classes.
        long aBytes = HostMemoryPool.SizeClass(4000), bBytes = HostMemoryPool.SizeClass(1000);
        Assert.True(aBytes >= 4000 && bBytes >= 1000);
        var a = backend.Allocate(DType.F32, 1000);
        using (var b = backend.Allocate(DType.BF16, 500))
            Assert.Equal(new MemoryStats(aBytes + bBytes, aBytes + bBytes), backend.Memory);
        Assert.Equal(new MemoryStats(aBytes, aBytes + bBytes), backend.Memory);
        backend.ResetPeakMemory();
        a.Dispose();
        Assert.Equal(new MemoryStats(0, aBytes), backend.Memory);
    }
}
