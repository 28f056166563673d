using Sora.Kernels.Gpu;
using Xunit;

namespace Sora.Tests.Kernels.Ilgpu;

/// <summary>
/// One ILGPU CPU-accelerator backend (CPUDeviceKind.Default: 16 threads per group) shared by every test of
/// the collection: kernels compile once, and the tests run one at a time on it.
/// </summary>
public sealed class IlgpuCpuFixture : IDisposable
{
    public IlgpuBackend Backend { get; } = IlgpuBackend.CreateCpu();

    public void Dispose() => Backend.Dispose();
}

[CollectionDefinition(Name)]
public sealed class IlgpuCpuCollection : ICollectionFixture<IlgpuCpuFixture>
{
    public const string Name = "ILGPU CPU accelerator";
}
