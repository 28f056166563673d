using Sora.Kernels.Cpu;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Cpu;

public class CpuConvTests
{
    private static readonly CpuBackend Backend = new(2);

    private static void Check(int cin, int cout, int t, int h, int w, Conv3dGeometry g, int cacheFrames = -1, DType wtype = DType.F32, int seed = 1)
    {
        float[] x = Random(cin * t * h * w, seed), wt = Round(Random(cout * cin * g.KernelT * g.KernelH * g.KernelW, seed + 1, 0.3f), wtype);
        float[] b = Random(cout, seed + 2);
        float[]? cache = cacheFrames >= 0 ? Random(cin * cacheFrames * h * w, seed + 3) : null;
        var expected = Reference.Conv3d(D(x), cin, t, h, w, D(wt), cout, g.KernelT, g.KernelH, g.KernelW, D(b),
            g.StrideT, g.StrideH, g.StrideW, g.PadT0, g.PadT1, g.PadH0, g.PadH1, g.PadW0, g.PadW1,
            cache is null ? null : D(cache), Math.Max(0, cacheFrames), out int ot, out int oh, out int ow);
        using var xt = Upload(Backend, x, [cin, t, h, w]);
        using var wtt = Upload(Backend, wt, [cout, cin, g.KernelT, g.KernelH, g.KernelW], wtype);
        using var bt = Upload(Backend, b, [cout]);
        using var ct = cache is null ? null : Upload(Backend, cache, [cin, cacheFrames, h, w]);
        using var y = Poisoned(Backend, cout, ot, oh, ow);
        Backend.Conv3d(xt, wtt, bt, y, g, ct);
        AssertClose(expected, Download(Backend, y), 1e-5, $"conv {g} cache {cacheFrames}");
    }

    private static readonly Conv3dGeometry Causal3 = new(3, 3, 3, PadT0: 2, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1);

    [Fact] public void Causal_3x3x3_without_cache() => Check(5, 7, 4, 9, 11, Causal3);
    [Fact] public void Causal_3x3x3_with_a_one_frame_cache() => Check(4, 6, 3, 8, 7, Causal3, cacheFrames: 1, seed: 2);
    [Fact] public void Causal_3x3x3_with_a_two_frame_cache() => Check(4, 6, 1, 8, 7, Causal3, cacheFrames: 2, seed: 3);
    [Fact] public void Pointwise_1x1x1() => Check(19, 13, 3, 5, 6, new Conv3dGeometry(1, 1, 1), seed: 4);
    [Fact] public void Time_3x1x1_causal_with_cache() => Check(6, 12, 2, 5, 9, new Conv3dGeometry(3, 1, 1, PadT0: 2), cacheFrames: 2, seed: 5);
    [Fact] public void Time_stride_2_over_a_cached_frame_without_padding() =>
        Check(6, 6, 4, 5, 4, new Conv3dGeometry(3, 1, 1, StrideT: 2), cacheFrames: 1, seed: 6);
    [Fact] public void Spatial_stride_2_with_right_and_bottom_padding_only() =>
        Check(5, 8, 2, 10, 13, new Conv3dGeometry(1, 3, 3, StrideH: 2, StrideW: 2, PadH1: 1, PadW1: 1), seed: 7);
    [Fact] public void Patch_embedding_kernel_equals_stride_with_bf16_weights() =>
        Check(16, 24, 2, 8, 6, new Conv3dGeometry(1, 2, 2, StrideH: 2, StrideW: 2), wtype: DType.BF16, seed: 8);
    [Fact] public void Single_element_input() => Check(1, 1, 1, 1, 1, new Conv3dGeometry(1, 1, 1), seed: 9);
    [Fact] public void F16_weights_3x3x3() => Check(3, 17, 2, 6, 5, Causal3, wtype: DType.F16, seed: 10);

    [Fact]
    public void Wrong_output_shape_is_rejected_naming_y()
    {
        using var x = Upload(Backend, Random(2 * 3 * 4 * 4, 1), [2, 3, 4, 4]);
        using var w = Upload(Backend, Random(2 * 2 * 27, 2), [2, 2, 3, 3, 3]);
        using var y = Poisoned(Backend, 2, 2, 4, 4);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv3d(x, w, null, y, Causal3));
        Assert.Equal("y", e.ParamName);
    }
}
