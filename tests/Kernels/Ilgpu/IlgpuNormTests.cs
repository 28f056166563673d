using Sora.Kernels.Gpu;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Ilgpu;

[Collection(IlgpuCpuCollection.Name)]
[Trait("Backend", "IlgpuCpu")]
public class IlgpuNormTests(IlgpuCpuFixture fixture)
{
    private readonly IlgpuBackend _backend = fixture.Backend;

    // Widths below, at and above the 16-thread group, and not multiples of it.
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 16)]
    [InlineData(5, 37)]
    [InlineData(2, 100)]
    public void Row_norms_match_reference(int m, int n) => IlgpuChecks.Norms(_backend, m, n, m * 31 + n);

    [Fact]
    public void Norm_weights_in_bf16_are_widened()
    {
        int m = 3, n = 20;
        float[] x = Random(m * n, 1, 2f), w = Round(Random(n, 2), DType.BF16);
        using var xt = Upload(_backend, x, [m, n]);
        using var wt = Upload(_backend, w, [n], DType.BF16);
        using var y = Poisoned(_backend, m, n);
        _backend.RmsNorm(xt, wt, 1e-6f, y);
        AssertClose(Reference.RmsNorm(D(x), m, n, D(w), 1e-6), Download(_backend, y));
    }

    [Theory]
    [InlineData(1, 1, true)]
    [InlineData(5, 33, false)]
    [InlineData(12, 7, true)]
    public void ChannelRmsNorm_normalises_each_position_over_channels(int c, int l, bool withBeta)
    {
        float[] x = Random(c * l, c + l, 2f), g = Random(c, 3), b = Random(c, 4);
        using var xt = Upload(_backend, x, [c, l]);
        using var gt = Upload(_backend, g, [c]);
        using var bt = Upload(_backend, b, [c]);
        using var y = Poisoned(_backend, c, l);
        _backend.ChannelRmsNorm(xt, gt, withBeta ? bt : null, y);
        AssertClose(Reference.ChannelRmsNorm(D(x), c, l, D(g), withBeta ? D(b) : null), Download(_backend, y));
    }

    [Fact]
    public void GatedResidual_adds_gated_rows_in_place()
    {
        int m = 4, n = 19;
        float[] x = Random(m * n, 5), y = Random(m * n, 6), g = Random(n, 7);
        using var xt = Upload(_backend, x, [m, n]);
        using var yt = Upload(_backend, y, [m, n]);
        using var gt = Upload(_backend, g, [n]);
        _backend.GatedResidual(xt, yt, gt);
        AssertClose(Reference.GatedResidual(D(x), D(y), D(g), n), Download(_backend, xt));
    }

    [Fact]
    public void Norms_and_maps_accept_output_equal_to_input()
    {
        int m = 3, n = 21;
        float[] x = Random(m * n, 8, 2f), w = Random(n, 9), b = Random(n, 10);
        using var wt = Upload(_backend, w, [n]);
        using var bt = Upload(_backend, b, [n]);
        using (var xt = Upload(_backend, x, [m, n]))
        {
            _backend.LayerNorm(xt, wt, bt, 1e-6f, xt);
            AssertClose(Reference.LayerNorm(D(x), m, n, D(w), D(b), 1e-6), Download(_backend, xt), 1e-5, "LayerNorm in place");
        }
        float[] gamma = Random(m, 11);
        using (var gt = Upload(_backend, gamma, [m]))
        using (var xt = Upload(_backend, x, [m, n]))
        {
            _backend.ChannelRmsNorm(xt, gt, null, xt);
            AssertClose(Reference.ChannelRmsNorm(D(x), m, n, D(gamma), null), Download(_backend, xt), 1e-5, "ChannelRmsNorm in place");
        }
        using (var xt = Upload(_backend, x, [m, n]))
        {
            _backend.Silu(xt, xt);
            AssertClose(Reference.Map(D(x), Reference.Silu), Download(_backend, xt), 1e-5, "Silu in place");
        }
    }

    [Fact]
    public void Mismatched_norm_weight_is_rejected_naming_it()
    {
        using var x = Upload(_backend, Random(12, 1), [3, 4]);
        using var w = Upload(_backend, Random(5, 2), [5]);
        using var y = Poisoned(_backend, 3, 4);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => _backend.RmsNorm(x, w, 1e-6f, y)).ParamName);
    }
}
