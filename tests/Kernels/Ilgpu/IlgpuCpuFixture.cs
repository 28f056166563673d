using Sora.Kernels.Gpu;
using Xunit;

namespace Sora.Tests.Kernels.Ilgpu;

/// <summary>
/// One ILGPU CPU-accelerator backend shared by every test of the collection (kernels compile once, tests run
/// one at a time on it), with the largest groups CPUDeviceKind.Default allows (16 threads: 4×4 GEMM groups with
/// 16×16 tiles, 8×8 attention tiles) so barriers and cooperative loads are exercised, not the one-thread
/// groups the CPU accelerator gets by default.
/// </summary>
public sealed class IlgpuCpuFixture : IDisposable
{
    public IlgpuBackend Backend { get; } = IlgpuBackend.CreateCpu(options: IlgpuKernelOptions.ForGroupLimit(16));

    public void Dispose() => Backend.Dispose();
}

[CollectionDefinition(Name)]
public sealed class IlgpuCpuCollection : ICollectionFixture<IlgpuCpuFixture>
{
    public const string Name = "ILGPU CPU accelerator";
}
