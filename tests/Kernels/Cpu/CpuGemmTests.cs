using Sora.Kernels.Cpu;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Cpu;

public class CpuGemmTests
{
    private static readonly CpuBackend Backend = new(2);

    [Theory]
    [InlineData(1, 1, 1, DType.F32)]
    [InlineData(3, 5, 7, DType.F32)]
    [InlineData(64, 96, 128, DType.F32)]
    [InlineData(37, 53, 71, DType.F32)]
    [InlineData(130, 70, 300, DType.F32)]
    [InlineData(7, 33, 1030, DType.F32)]
    [InlineData(200, 131, 64, DType.F32)]
    [InlineData(37, 53, 71, DType.BF16)]
    [InlineData(129, 65, 257, DType.F16)]
    [InlineData(45, 100, 260, DType.BF16)]
    public void Gemm_matches_reference_for_every_epilogue(int m, int n, int k, DType wtype)
    {
        foreach (var epilogue in Enum.GetValues<GemmEpilogue>())
        {
            int seed = m * 7919 + n * 104729 + k + (int)epilogue * 31 + (int)wtype * 1000003;
            float[] x = Random(m * k, seed), w = Round(Random(n * k, seed + 1), wtype), b = Random(n, seed + 2);
            float[] r = Random(m * n, seed + 3), g = Random(n, seed + 4);
            using var xt = Upload(Backend, x, [m, k]);
            using var wt = Upload(Backend, w, [n, k], wtype);
            using var bt = Upload(Backend, b, [n]);
            using var rt = Upload(Backend, r, [m, n]);
            using var gt = Upload(Backend, g, [n]);
            using var y = Poisoned(Backend, m, n);
            bool needsResidual = epilogue is GemmEpilogue.AddResidual or GemmEpilogue.GatedResidual;
            Backend.Gemm(xt, wt, bt, y, epilogue, needsResidual ? rt : null, epilogue == GemmEpilogue.GatedResidual ? gt : null);
            var expected = Reference.Gemm(D(x), D(w), D(b), m, n, k, (Reference.Epilogue)(int)epilogue, D(r), D(g));
            AssertClose(expected, Download(Backend, y), 1e-5, $"{epilogue} {m}x{n}x{k} {wtype}");
        }
    }

    [Fact]
    public void Gemm_without_bias_reads_and_writes_strided_rows_and_accepts_residual_equal_to_output()
    {
        int m = 19, n = 45, k = 67;
        float[] x = Random(m * k, 11), w = Random(n * k, 12), r = Random(m * n, 13), g = Random(n, 14);
        var xv = StridedRows(Backend, x, m, k, k + 13, out var xOwner);
        var yv = StridedRows(Backend, r, m, n, n + 5, out var yOwner);
        using (xOwner)
        using (yOwner)
        using (var wt = Upload(Backend, w, [n, k]))
        using (var gt = Upload(Backend, g, [n]))
        {
            Backend.Gemm(xv, wt, null, yv, GemmEpilogue.GatedResidual, yv, gt);
            var expected = Reference.Gemm(D(x), D(w), null, m, n, k, Reference.Epilogue.GatedResidual, D(r), D(g));
            AssertClose(expected, yv.ToFloatArray());
            // The padding between rows stays untouched (NaN).
            float[] full = yOwner.ToFloatArray();
            for (int row = 0; row < m; row++)
                for (int c = n; c < n + 5; c++) Assert.True(float.IsNaN(full[row * (n + 5) + c]));
        }
    }

    [Fact]
    public void Gemm_rejects_mismatched_shapes_naming_the_argument()
    {
        using var x = Upload(Backend, Random(12, 1), [3, 4]);
        using var w = Upload(Backend, Random(10, 2), [2, 5]);
        using var y = Poisoned(Backend, 3, 2);
        var e = Assert.Throws<ArgumentException>(() => Backend.Gemm(x, w, null, y));
        Assert.Equal("w", e.ParamName);
        using var w2 = Upload(Backend, Random(8, 2), [2, 4]);
        Assert.Throws<ArgumentNullException>(() => Backend.Gemm(x, w2, null, y, GemmEpilogue.AddResidual));
    }
}
