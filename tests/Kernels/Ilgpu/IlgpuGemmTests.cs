using Sora.Kernels.Gpu;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Ilgpu;

[Collection(IlgpuCpuCollection.Name)]
[Trait("Backend", "IlgpuCpu")]
public class IlgpuGemmTests(IlgpuCpuFixture fixture)
{
    private readonly IlgpuBackend _backend = fixture.Backend;

    // Shapes around the CPU accelerator's 16×16 tile (4×4 threads × 4×4 outputs, K step 8): single elements,
    // exact tiles, and ragged edges in every dimension.
    [Theory]
    [InlineData(1, 1, 1, DType.F32)]
    [InlineData(16, 16, 8, DType.F32)]
    [InlineData(17, 5, 9, DType.F32)]
    [InlineData(3, 33, 20, DType.F32)]
    [InlineData(19, 18, 13, DType.BF16)]
    [InlineData(7, 21, 17, DType.F16)]
    public void Gemm_matches_reference_for_every_epilogue(int m, int n, int k, DType wtype) =>
        IlgpuChecks.Gemm(_backend, m, n, k, wtype);

    [Fact]
    public void Gemm_without_bias_reads_and_writes_strided_rows_with_residual_equal_to_output()
    {
        int m = 9, n = 13, k = 11;
        float[] x = Random(m * k, 11), w = Random(n * k, 12), r = Random(m * n, 13), g = Random(n, 14);
        var xv = StridedRows(_backend, x, m, k, k + 3, out var xOwner);
        var yv = StridedRows(_backend, r, m, n, n + 5, out var yOwner);
        using (xOwner)
        using (yOwner)
        using (var wt = Upload(_backend, w, [n, k]))
        using (var gt = Upload(_backend, g, [n]))
        {
            _backend.Gemm(xv, wt, null, yv, GemmEpilogue.GatedResidual, yv, gt);
            var expected = Reference.Gemm(D(x), D(w), null, m, n, k, Reference.Epilogue.GatedResidual, D(r), D(g));
            AssertClose(expected, Download(_backend, yv));
            // The padding between rows stays untouched (NaN).
            float[] full = Download(_backend, yOwner);
            for (int row = 0; row < m; row++)
                for (int c = n; c < n + 5; c++) Assert.True(float.IsNaN(full[row * (n + 5) + c]));
        }
    }

    [Fact]
    public void Gemm_rejects_mismatched_shapes_and_host_tensors_naming_the_argument()
    {
        using var x = Upload(_backend, Random(12, 1), [3, 4]);
        using var w = Upload(_backend, Random(10, 2), [2, 5]);
        using var y = Poisoned(_backend, 3, 2);
        Assert.Equal("w", Assert.Throws<ArgumentException>(() => _backend.Gemm(x, w, null, y)).ParamName);
        using var w2 = Upload(_backend, Random(8, 2), [2, 4]);
        Assert.Throws<ArgumentNullException>(() => _backend.Gemm(x, w2, null, y, GemmEpilogue.AddResidual));
        using var hostX = Tensor.FromArray(Random(12, 3), [3, 4]);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => _backend.Gemm(hostX, w2, null, y)).ParamName);
    }
}
