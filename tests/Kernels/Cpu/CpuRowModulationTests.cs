using Sora.Kernels.Cpu;
using Sora.Runtime;
using Xunit;

namespace Sora.Tests.Kernels.Cpu;

/// <summary>The per-row modulation ops (per-token timesteps) of the CPU backend.</summary>
public class CpuRowModulationTests
{
    private static readonly CpuBackend Backend = new(2);

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 33, 2)]
    [InlineData(130, 1536, 2)]
    [InlineData(40, 257, 40)]   // every row its own set
    [InlineData(3, 4097, 3)]
    public void AdaLnModulateRows_matches_reference(int m, int n, int g) => RowModulationChecks.AdaLnRows(Backend, m, n, g, m * 31 + n + g);

    [Fact]
    public void AdaLnModulateRows_in_place_with_bf16_bases() => RowModulationChecks.AdaLnRows(Backend, 9, 300, 3, 5, inPlace: true, baseType: DType.BF16);

    [Theory]
    [InlineData(1, 1, 1, 1, DType.F32)]
    [InlineData(67, 70, 45, 2, DType.F32)]
    [InlineData(150, 300, 64, 150, DType.F32)]  // every row its own set
    [InlineData(33, 2100, 40, 3, DType.BF16)]   // wider than one column block (NC = 2048) and the 256-column gate chunk
    [InlineData(20, 9, 33, 2, DType.F16)]
    public void GemmGatedRows_matches_reference(int m, int n, int k, int g, DType wtype)
    {
        RowModulationChecks.GemmRows(Backend, m, n, k, g, m + n + k + g, wtype);
        RowModulationChecks.GemmRows(Backend, m, n, k, g, m + n + k + g + 7, wtype, residualIsY: true, withBias: false);
    }

    [Fact]
    public void Bad_arguments_are_rejected_naming_them() => RowModulationChecks.BadArgumentsAreRejected(Backend);
}
