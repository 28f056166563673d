using Sora.Kernels.Gpu;
using Sora.Runtime;
using Xunit;

namespace Sora.Tests.Kernels.Ilgpu;

/// <summary>The per-row modulation kernels (per-token timesteps) on ILGPU's CPU accelerator.</summary>
[Collection(IlgpuCpuCollection.Name)]
[Trait("Backend", "IlgpuCpu")]
public class IlgpuRowModulationTests(IlgpuCpuFixture fixture)
{
    private readonly IlgpuBackend _backend = fixture.Backend;

    // Widths below, at and above the 16-thread group, and not multiples of it.
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 16, 2)]
    [InlineData(5, 37, 2)]
    [InlineData(12, 100, 12)]   // every row its own set
    public void AdaLnModulateRows_matches_reference(int m, int n, int g) => RowModulationChecks.AdaLnRows(_backend, m, n, g, m * 31 + n + g);

    [Fact]
    public void AdaLnModulateRows_in_place_with_bf16_bases() => RowModulationChecks.AdaLnRows(_backend, 6, 40, 3, 5, inPlace: true, baseType: DType.BF16);

    [Theory]
    [InlineData(1, 1, 1, 1, DType.F32)]
    [InlineData(67, 70, 45, 2, DType.F32)]
    [InlineData(40, 33, 20, 40, DType.F32)]   // every row its own set
    [InlineData(33, 65, 40, 3, DType.BF16)]
    [InlineData(20, 9, 33, 2, DType.F16)]
    public void GemmGatedRows_matches_reference(int m, int n, int k, int g, DType wtype)
    {
        RowModulationChecks.GemmRows(_backend, m, n, k, g, m + n + k + g, wtype);
        RowModulationChecks.GemmRows(_backend, m, n, k, g, m + n + k + g + 7, wtype, residualIsY: true, withBias: false);
    }

    [Fact]
    public void Bad_arguments_are_rejected_naming_them() => RowModulationChecks.BadArgumentsAreRejected(_backend);
}
