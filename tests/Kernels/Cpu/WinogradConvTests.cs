using Sora.Kernels.Cpu;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Xunit;
using Xunit.Abstractions;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Cpu;

/// <summary>
/// The Winograd F(4×4, 3×3) path of the CPU conv against the float64 direct convolution, at the VAE's channel counts
/// and at sizes that are not multiples of the 4×4 tile, outputs NaN-poisoned; the implicit GEMM (pinned) on the same
/// inputs for comparison. Relative errors are printed.
/// </summary>
public sealed class WinogradConvTests(ITestOutputHelper output)
{
    private static readonly CpuBackend Winograd = new(2);
    private static readonly CpuBackend Implicit = new(2) { ConvAlgorithm = ConvAlgorithm.ImplicitGemm };
    private static readonly Conv3dGeometry Causal3 = new(3, 3, 3, PadT0: 2, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1);
    private static readonly Conv3dGeometry Spatial3 = new(1, 3, 3, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1);

    private void Check(int cin, int cout, int t, int h, int w, Conv3dGeometry g, int cacheFrames = -1, bool withBias = true,
        DType wtype = DType.F32, int seed = 1, bool alsoImplicit = false)
    {
        Assert.True(WinogradConv.Applies(g), $"{g} should take the Winograd path");
        float[] x = Random(cin * t * h * w, seed), wt = Round(Random(cout * cin * g.KernelT * 9, seed + 1, 0.3f), wtype);
        float[]? b = withBias ? Random(cout, seed + 2) : null;
        float[]? cache = cacheFrames >= 0 ? Random(cin * cacheFrames * h * w, seed + 3) : null;
        var expected = Reference.Conv3d(D(x), cin, t, h, w, D(wt), cout, g.KernelT, 3, 3, b is null ? null : D(b),
            g.StrideT, 1, 1, g.PadT0, g.PadT1, g.PadH0, g.PadH1, g.PadW0, g.PadW1,
            cache is null ? null : D(cache), Math.Max(0, cacheFrames), out int ot, out int oh, out int ow);
        foreach (var backend in alsoImplicit ? new[] { Winograd, Implicit } : [Winograd])
        {
            using var xt = Upload(backend, x, [cin, t, h, w]);
            using var wtt = Upload(backend, wt, [cout, cin, g.KernelT, 3, 3], wtype);
            using var bt = b is null ? null : Upload(backend, b, [cout]);
            using var ct = cache is null ? null : Upload(backend, cache, [cin, cacheFrames, h, w]);
            using var y = Poisoned(backend, cout, ot, oh, ow);
            backend.Conv3d(xt, wtt, bt, y, g, ct);
            float[] actual = Download(backend, y);
            string what = $"{backend.ConvAlgorithm} conv {cin}→{cout}, kT {g.KernelT}, x [{t}, {h}, {w}], cache {cacheFrames}";
            output.WriteLine($"{what}: relative error {RelativeError(expected, actual):E2}");
            AssertClose(expected, actual, 1e-5, what);
        }
    }

    private static double RelativeError(double[] expected, float[] actual)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            diff += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            norm += expected[i] * expected[i];
        }
        return Math.Sqrt(diff / norm);
    }

    [Fact]
    public void Decoder_frame_96_channels_with_a_two_frame_cache() => Check(96, 96, 1, 13, 19, Causal3, cacheFrames: 2, alsoImplicit: true);

    [Fact]
    public void Depth_of_384_channels_by_3_taps_over_several_depth_blocks() => Check(384, 384, 2, 9, 10, Causal3, cacheFrames: 2, seed: 2, alsoImplicit: true);

    [Fact]
    public void Output_channels_not_a_multiple_of_the_panel_without_bias() => Check(192, 100, 2, 11, 14, Spatial3, withBias: false, seed: 3);

    [Fact]
    public void Several_tile_blocks_per_frame_and_a_partial_last_block() => Check(128, 40, 2, 40, 70, Causal3, cacheFrames: 1, seed: 4);

    [Fact]
    public void Few_output_channels_as_in_the_decoder_head() => Check(256, 12, 1, 21, 18, Causal3, cacheFrames: 2, seed: 5);

    [Fact]
    public void No_padding_shrinks_the_output() => Check(48, 64, 1, 11, 13, new Conv3dGeometry(1, 3, 3), seed: 6);

    [Fact]
    public void Uneven_padding_and_time_stride_2() =>
        Check(40, 56, 5, 10, 9, new Conv3dGeometry(3, 3, 3, StrideT: 2, PadT0: 1, PadT1: 1, PadH0: 2, PadW1: 2), seed: 7);

    [Fact]
    public void Time_padding_without_cache_zeroes_the_missing_frames() => Check(64, 96, 3, 7, 6, Causal3, seed: 8);

    [Fact]
    public void Bf16_weights() => Check(128, 160, 1, 8, 12, Causal3, cacheFrames: 2, wtype: DType.BF16, seed: 9);

    [Fact]
    public void One_output_pixel() => Check(24, 33, 1, 1, 1, Spatial3, seed: 10);

    /// <summary>Q4_K weights, whose depth blocks (9 floats per depth row) start inside 256-value ggml blocks.</summary>
    [Theory]
    [InlineData(1, 13, 11)] // one block of tiles: it transforms the filter panels itself
    [InlineData(3, 7, 6)] // three blocks: the filter is transformed once and shared
    public void Q4_K_weights_read_in_depth_blocks_that_start_inside_ggml_blocks(int t, int h, int w)
    {
        int cin = 96, cout = 64, k = cin * 27;
        byte[] blocks = WeightChecks.RandomBlocks(GgmlType.Q4_K, (long)cout * k, 11);
        float[] wt = WeightChecks.Expand(GgmlType.Q4_K, blocks, (long)cout * k);
        float[] x = Random(cin * t * h * w, 12), b = Random(cout, 13), cache = Random(cin * 2 * h * w, 14);
        var expected = Reference.Conv3d(D(x), cin, t, h, w, D(wt), cout, 3, 3, 3, D(b), 1, 1, 1, 2, 0, 1, 1, 1, 1,
            D(cache), 2, out int ot, out int oh, out int ow);
        using var xt = Upload(Winograd, x, [cin, t, h, w]);
        using var bt = Upload(Winograd, b, [cout]);
        using var ct = Upload(Winograd, cache, [cin, 2, h, w]);
        using var bw = Winograd.Upload(blocks);
        using var y = Poisoned(Winograd, cout, ot, oh, ow);
        Winograd.Conv3d(xt, new BlockWeight(GgmlType.Q4_K, bw, cout, k), bt, y, Causal3, ct);
        float[] actual = Download(Winograd, y);
        output.WriteLine($"q4_K conv {cin}→{cout}, x [{t}, {h}, {w}]: relative error {RelativeError(expected, actual):E2}");
        AssertClose(expected, actual, 1e-5, $"q4_K conv x [{t}, {h}, {w}]");
    }
}
