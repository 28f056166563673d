using Sora.Kernels.Cpu;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Cpu;

public class CpuNormTests
{
    private static readonly CpuBackend Backend = new(2);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 33)]
    [InlineData(130, 1536)]
    [InlineData(3, 4097)]
    public void LayerNorm_with_and_without_affine(int m, int n)
    {
        // An offset mean checks the variance is computed stably.
        float[] x = Random(m * n, m + n).Select(v => v * 3 + 5).ToArray(), g = Random(n, 2), b = Random(n, 3);
        using var xt = Upload(Backend, x, [m, n]);
        using var gt = Upload(Backend, g, [n], DType.BF16);
        using var bt = Upload(Backend, b, [n]);
        using var y = Poisoned(Backend, m, n);
        Backend.LayerNorm(xt, gt, bt, 1e-6f, y);
        AssertClose(Reference.LayerNorm(D(x), m, n, D(Round(g, DType.BF16)), D(b), 1e-6), Download(Backend, y));
        using var y2 = Poisoned(Backend, m, n);
        Backend.LayerNorm(xt, null, null, 1e-5f, y2);
        AssertClose(Reference.LayerNorm(D(x), m, n, null, null, 1e-5), Download(Backend, y2));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(9, 128)]
    [InlineData(65, 1537)]
    public void RmsNorm_matches_reference(int m, int n)
    {
        float[] x = Random(m * n, m * n), g = Random(n, 5);
        using var xt = Upload(Backend, x, [m, n]);
        using var gt = Upload(Backend, g, [n]);
        using var y = Poisoned(Backend, m, n);
        Backend.RmsNorm(xt, gt, 1e-6f, y);
        AssertClose(Reference.RmsNorm(D(x), m, n, D(g), 1e-6), Download(Backend, y));
    }

    [Theory]
    [InlineData(1, 1, false)]
    [InlineData(96, 3 * 7 * 9, true)]
    [InlineData(13, 1000, false)]
    public void ChannelRmsNorm_matches_reference(int c, int l, bool withBeta)
    {
        float[] x = Random(c * l, c + l), g = Random(c, 6), b = Random(c, 7);
        using var xt = Upload(Backend, x, [c, l]);
        using var gt = Upload(Backend, g, [c]);
        using var bt = Upload(Backend, b, [c]);
        using var y = Poisoned(Backend, c, l);
        Backend.ChannelRmsNorm(xt, gt, withBeta ? bt : null, y);
        AssertClose(Reference.ChannelRmsNorm(D(x), c, l, D(g), withBeta ? D(b) : null), Download(Backend, y));
    }

    [Theory]
    [InlineData(1, 3)]
    [InlineData(77, 1536)]
    public void AdaLnModulate_matches_reference(int m, int n)
    {
        float[] x = Random(m * n, 8), sh = Random(n, 9), sc = Random(n, 10);
        using var xt = Upload(Backend, x, [m, n]);
        using var sht = Upload(Backend, sh, [n]);
        using var sct = Upload(Backend, sc, [n]);
        using var y = Poisoned(Backend, m, n);
        Backend.AdaLnModulate(xt, sht, sct, 1e-6f, y);
        AssertClose(Reference.AdaLnModulate(D(x), m, n, D(sh), D(sc), 1e-6), Download(Backend, y));
        Backend.AdaLnModulate(xt, sht, sct, 1e-6f, xt); // in place
        AssertClose(Reference.AdaLnModulate(D(x), m, n, D(sh), D(sc), 1e-6), Download(Backend, xt));
    }

    [Fact]
    public void GatedResidual_adds_gated_rows_in_place()
    {
        int m = 33, n = 70;
        float[] x = Random(m * n, 11), y = Random(m * n, 12), g = Random(n, 13);
        using var xt = Upload(Backend, x, [m, n]);
        using var yt = Upload(Backend, y, [m, n]);
        using var gt = Upload(Backend, g, [n]);
        Backend.GatedResidual(xt, yt, gt);
        AssertClose(Reference.GatedResidual(D(x), D(y), D(g), n), Download(Backend, xt));
    }
}
