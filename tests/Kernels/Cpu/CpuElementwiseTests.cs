using Sora.Kernels.Cpu;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Cpu;

public class CpuElementwiseTests
{
    private static readonly CpuBackend Backend = new(2);

    // Sizes: one element, not a multiple of any vector width, and large enough to be split across workers.
    public static TheoryData<int> Sizes => new() { 1, 37, 100_003 };

    private static void Unary(int n, Action<Tensor, Tensor> op, Func<double, double> f, float scale = 3f)
    {
        float[] x = Random(n, n + 1, scale);
        using var xt = Upload(Backend, x, [n]);
        using var y = Poisoned(Backend, n);
        op(xt, y);
        AssertClose(Reference.Map(D(x), f), Download(Backend, y));
        op(xt, xt); // output == input
        AssertClose(Reference.Map(D(x), f), Download(Backend, xt));
    }

    private static void Binary(int n, Action<Tensor, Tensor, Tensor> op, Func<double, double, double> f)
    {
        float[] a = Random(n, n + 2), b = Random(n, n + 3);
        using var at = Upload(Backend, a, [n]);
        using var bt = Upload(Backend, b, [n]);
        using var y = Poisoned(Backend, n);
        op(at, bt, y);
        AssertClose(Reference.Zip(D(a), D(b), f), Download(Backend, y));
    }

    [Theory, MemberData(nameof(Sizes))] public void GeluTanh(int n) => Unary(n, Backend.GeluTanh, Reference.GeluTanh, 6f);
    [Theory, MemberData(nameof(Sizes))] public void Silu(int n) => Unary(n, Backend.Silu, Reference.Silu, 6f);
    [Theory, MemberData(nameof(Sizes))] public void ScaleShift(int n) => Unary(n, (x, y) => Backend.ScaleShift(x, 1.5f, -0.25f, y), v => v * 1.5 - 0.25);
    [Theory, MemberData(nameof(Sizes))] public void Clamp(int n) => Unary(n, (x, y) => Backend.Clamp(x, -1f, 0.5f, y), v => Math.Clamp(v, -1, 0.5));
    [Theory, MemberData(nameof(Sizes))] public void Add(int n) => Binary(n, Backend.Add, (a, b) => a + b);
    [Theory, MemberData(nameof(Sizes))] public void Mul(int n) => Binary(n, Backend.Mul, (a, b) => a * b);
    [Theory, MemberData(nameof(Sizes))] public void CfgCombine(int n) => Binary(n, (u, c, y) => Backend.CfgCombine(u, c, 5f, y), (u, c) => u + 5 * (c - u));

    [Theory, MemberData(nameof(Sizes))]
    public void EulerStep(int n)
    {
        float[] x = Random(n, 4), v = Random(n, 5);
        using var xt = Upload(Backend, x, [n]);
        using var vt = Upload(Backend, v, [n]);
        Backend.EulerStep(xt, vt, 0.8f, 0.6f);
        AssertClose(Reference.Zip(D(x), D(v), (a, b) => a + ((double)0.6f - 0.8f) * b), Download(Backend, xt));
    }

    [Theory, MemberData(nameof(Sizes))]
    public void LinearCombination_including_output_as_a_term(int n)
    {
        float[] a = Random(n, 6), b = Random(n, 7), c = Random(n, 8);
        float[] coef = [0.5f, -1.25f, 2f];
        using var at = Upload(Backend, a, [n]);
        using var bt = Upload(Backend, b, [n]);
        using var ct = Upload(Backend, c, [n]);
        var expected = Reference.LinearCombination(D(coef), [D(a), D(b), D(c)]);
        using var y = Poisoned(Backend, n);
        Backend.LinearCombination(coef, [at, bt, ct], y);
        AssertClose(expected, Download(Backend, y));
        Backend.LinearCombination(coef, [at, bt, ct], bt);
        AssertClose(expected, Download(Backend, bt));
    }

    [Fact]
    public void ChannelAffine_per_channel()
    {
        int c = 16, l = 3 * 5 * 7;
        float[] x = Random(c * l, 9), sc = Random(c, 10), sh = Random(c, 11);
        using var xt = Upload(Backend, x, [c, 3, 5, 7]);
        using var y = Poisoned(Backend, c, 3, 5, 7);
        Backend.ChannelAffine(xt, sc, sh, y);
        AssertClose(Reference.ChannelAffine(D(x), c, D(sc), D(sh)), Download(Backend, y));
        Assert.Throws<ArgumentException>(() => Backend.ChannelAffine(xt, sc[..3], sh, y));
    }

    [Fact]
    public void Mismatched_sizes_are_rejected_naming_the_argument()
    {
        using var a = Upload(Backend, Random(5, 1), [5]);
        using var b = Upload(Backend, Random(4, 2), [4]);
        using var y = Poisoned(Backend, 5);
        Assert.Equal("b", Assert.Throws<ArgumentException>(() => Backend.Add(a, b, y)).ParamName);
    }
}
