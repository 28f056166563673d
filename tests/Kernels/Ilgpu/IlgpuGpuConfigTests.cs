using ILGPU.Runtime.CPU;
using Sora.Kernels.Gpu;
using Sora.Runtime;
using Xunit;

namespace Sora.Tests.Kernels.Ilgpu;

/// <summary>The GPU group sizes (ILGPU's CPU accelerator emulating a warp-32, 1024-thread device).</summary>
public sealed class GpuConfigFixture : IDisposable
{
    public IlgpuBackend Backend { get; } = IlgpuBackend.CreateCpu(CPUDeviceKind.Nvidia, new IlgpuKernelOptions());

    public void Dispose() => Backend.Dispose();
}

/// <summary>
/// The kernels with the group sizes a GPU gets (16×16 GEMM groups with 64×64 tiles, 256-thread norms,
/// 128-thread attention with its tiles shrunk to the shared array at head_dim 128), run on ILGPU's CPU
/// accelerator in its Nvidia-like mode, so the GPU configuration is checked on machines without a GPU.
/// </summary>
[Trait("Backend", "IlgpuCpu")]
public class IlgpuGpuConfigTests(GpuConfigFixture fixture) : IClassFixture<GpuConfigFixture>
{
    private readonly IlgpuBackend _backend = fixture.Backend;

    [Fact]
    public void Options_are_the_gpu_defaults() => Assert.Equal(new IlgpuKernelOptions(), _backend.Options);

    [Fact]
    public void Gemm_with_64x64_tiles_and_ragged_edges() => IlgpuChecks.Gemm(_backend, 67, 70, 45, DType.BF16);

    [Fact]
    public void Attention_at_head_dim_128_with_packed_sequences_and_padding() =>
        IlgpuChecks.Attention(_backend, 40, 50, 2, 128, 0.09f, [0, 15, 40], [0, 20, 50], [20, 7], seed: 3, spread: 2f);

    [Fact]
    public void Norms_with_256_thread_groups() => IlgpuChecks.Norms(_backend, 3, 300, 4);

    [Fact]
    public void Conv3d_causal_with_cache() =>
        IlgpuChecks.Conv3d(_backend, 3, 5, 2, 5, 6, new Conv3dGeometry(3, 3, 3, PadT0: 2, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1), cacheFrames: 1, seed: 5);
}

/// <summary>The CPU accelerator's own defaults (one-thread groups, what Backends.Create("ilgpu-cpu") gets).</summary>
[Trait("Backend", "IlgpuCpu")]
public class IlgpuSingleThreadGroupTests
{
    [Fact]
    public void Every_op_family_matches_the_reference_with_one_thread_groups()
    {
        using var backend = IlgpuBackend.CreateCpu();
        Assert.Equal(IlgpuKernelOptions.SingleThreadGroups, backend.Options);
        IlgpuChecks.Gemm(backend, 9, 6, 21, DType.F16);
        IlgpuChecks.Attention(backend, 19, 23, 2, 8, 0.3f, [0, 4, 19], [0, 17, 23], [17, 0], bias: true, center: 18, seed: 7);
        IlgpuChecks.Norms(backend, 2, 9, 5);
        IlgpuChecks.Conv3d(backend, 2, 3, 2, 3, 4, new Conv3dGeometry(3, 3, 3, PadT0: 2, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1), cacheFrames: 2, seed: 6);
    }
}
