using Sora.Kernels.Gpu;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Ilgpu;

[Collection(IlgpuCpuCollection.Name)]
[Trait("Backend", "IlgpuCpu")]
public class IlgpuConvTests(IlgpuCpuFixture fixture)
{
    private readonly IlgpuBackend _backend = fixture.Backend;

    private static readonly Conv3dGeometry Causal3 = new(3, 3, 3, PadT0: 2, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1);

    [Fact] public void Causal_3x3x3_without_cache() => IlgpuChecks.Conv3d(_backend, 3, 5, 3, 5, 6, Causal3);
    [Fact] public void Causal_3x3x3_with_a_one_frame_cache() => IlgpuChecks.Conv3d(_backend, 2, 3, 2, 4, 5, Causal3, cacheFrames: 1, seed: 2);
    [Fact] public void Causal_3x3x3_with_a_two_frame_cache() => IlgpuChecks.Conv3d(_backend, 2, 3, 1, 4, 3, Causal3, cacheFrames: 2, seed: 3);
    [Fact] public void Pointwise_1x1x1() => IlgpuChecks.Conv3d(_backend, 7, 17, 2, 3, 3, new Conv3dGeometry(1, 1, 1), seed: 4);
    [Fact] public void Time_3x1x1_causal_with_cache() => IlgpuChecks.Conv3d(_backend, 3, 6, 2, 3, 5, new Conv3dGeometry(3, 1, 1, PadT0: 2), cacheFrames: 2, seed: 5);
    [Fact] public void Time_stride_2_over_a_cached_frame_without_padding() =>
        IlgpuChecks.Conv3d(_backend, 3, 4, 4, 3, 2, new Conv3dGeometry(3, 1, 1, StrideT: 2), cacheFrames: 1, seed: 6);
    [Fact] public void Spatial_stride_2_with_right_and_bottom_padding_only() =>
        IlgpuChecks.Conv3d(_backend, 3, 5, 1, 7, 9, new Conv3dGeometry(1, 3, 3, StrideH: 2, StrideW: 2, PadH1: 1, PadW1: 1), seed: 7);
    [Fact] public void Patch_embedding_kernel_equals_stride_with_bf16_weights() =>
        IlgpuChecks.Conv3d(_backend, 4, 6, 1, 4, 6, new Conv3dGeometry(1, 2, 2, StrideH: 2, StrideW: 2), wtype: DType.BF16, seed: 8);
    [Fact] public void Single_element_input() => IlgpuChecks.Conv3d(_backend, 1, 1, 1, 1, 1, new Conv3dGeometry(1, 1, 1), seed: 9);
    [Fact] public void F16_weights_3x3x3() => IlgpuChecks.Conv3d(_backend, 2, 13, 2, 3, 4, Causal3, wtype: DType.F16, seed: 10);

    [Fact]
    public void Wrong_output_shape_is_rejected_naming_y()
    {
        using var x = Upload(_backend, Random(2 * 3 * 4 * 4, 1), [2, 3, 4, 4]);
        using var w = Upload(_backend, Random(2 * 2 * 27, 2), [2, 2, 3, 3, 3]);
        using var y = Poisoned(_backend, 2, 2, 4, 4);
        var e = Assert.Throws<ArgumentException>(() => _backend.Conv3d(x, w, null, y, Causal3));
        Assert.Equal("y", e.ParamName);
    }
}
