using Sora.Kernels;
using Sora.Kernels.Gpu;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels.Ilgpu;

/// <summary>A fact that is skipped (not failed) when ILGPU finds no usable OpenCL device.</summary>
public sealed class OpenCLFactAttribute : FactAttribute
{
    public OpenCLFactAttribute()
    {
        if (OpenCLDevice.SkipReason is { } reason) Skip = reason;
    }
}

/// <summary>A theory that is skipped (not failed) when ILGPU finds no usable OpenCL device.</summary>
public sealed class OpenCLTheoryAttribute : TheoryAttribute
{
    public OpenCLTheoryAttribute()
    {
        if (OpenCLDevice.SkipReason is { } reason) Skip = reason;
    }
}

internal static class OpenCLDevice
{
    private static readonly Lazy<string?> Reason = new(() =>
    {
        var list = Backends.List().Where(d => d.Kind == "opencl").ToList();
        if (list.Any(d => d.Usable)) return null;
        return "no usable OpenCL device: " + string.Join("; ", list.Select(d => $"{d.Name}: {d.SkipReason}"));
    });

    public static string? SkipReason => Reason.Value;
}

/// <summary>The first usable OpenCL device (created only when an OpenCL test runs).</summary>
public sealed class OpenCLFixture : IDisposable
{
    private readonly Lazy<IlgpuBackend> _backend = new(() => IlgpuBackend.CreateOpenCL());

    public IlgpuBackend Backend => _backend.Value;

    public void Dispose()
    {
        if (_backend.IsValueCreated) _backend.Value.Dispose();
    }
}

/// <summary>
/// The kernels through ILGPU's OpenCL backend (e.g. PoCL 6 in Debian 13: see .ci/opencl-tests.sh), with the
/// device's own group sizes (16×16 GEMM groups, 256-thread norms, 128-thread attention).
/// </summary>
[Trait("Backend", "OpenCL")]
public class IlgpuOpenCLTests(OpenCLFixture fixture) : IClassFixture<OpenCLFixture>
{
    private IlgpuBackend Backend => fixture.Backend;

    [OpenCLFact]
    public void Device_is_an_opencl_device() => Assert.Equal("opencl", Backend.Device.Kind);

    [OpenCLTheory]
    [InlineData(1, 1, 1, DType.F32)]
    [InlineData(64, 64, 16, DType.F32)]
    [InlineData(67, 70, 45, DType.F32)]
    [InlineData(33, 65, 40, DType.BF16)]
    [InlineData(20, 9, 33, DType.F16)]
    public void Gemm(int m, int n, int k, DType wtype) => IlgpuChecks.Gemm(Backend, m, n, k, wtype);

    [OpenCLFact]
    public void Attention_single_and_packed_with_padding_bias_and_masked_rows()
    {
        IlgpuChecks.Attention(Backend, 1, 1, 1, 1, 1f);
        IlgpuChecks.Attention(Backend, 77, 45, 3, 64, 0.125f, seed: 2, spread: 2f);
        IlgpuChecks.Attention(Backend, 40, 50, 2, 128, 0.09f, [0, 15, 40], [0, 20, 50], [20, 7], seed: 3, spread: 2f);
        IlgpuChecks.Attention(Backend, 26, 26, 3, 16, 1f, [0, 11, 26], [0, 11, 26], [11, 9], bias: true, center: 20, seed: 4);
        IlgpuChecks.Attention(Backend, 20, 20, 2, 32, 0.2f, [0, 8, 20], [0, 8, 20], [0, 5], seed: 5);
    }

    [OpenCLFact]
    public void Conv3d_causal_with_cache_strided_and_reduced_precision_weights()
    {
        var causal = new Conv3dGeometry(3, 3, 3, PadT0: 2, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1);
        IlgpuChecks.Conv3d(Backend, 5, 7, 4, 9, 11, causal);
        IlgpuChecks.Conv3d(Backend, 4, 6, 1, 8, 7, causal, cacheFrames: 2, seed: 3);
        IlgpuChecks.Conv3d(Backend, 6, 6, 4, 5, 4, new Conv3dGeometry(3, 1, 1, StrideT: 2), cacheFrames: 1, seed: 6);
        IlgpuChecks.Conv3d(Backend, 5, 8, 2, 10, 13, new Conv3dGeometry(1, 3, 3, StrideH: 2, StrideW: 2, PadH1: 1, PadW1: 1), seed: 7);
        IlgpuChecks.Conv3d(Backend, 16, 24, 2, 8, 6, new Conv3dGeometry(1, 2, 2, StrideH: 2, StrideW: 2), wtype: DType.BF16, seed: 8);
        IlgpuChecks.Conv3d(Backend, 3, 17, 2, 6, 5, causal, wtype: DType.F16, seed: 10);
    }

    [OpenCLFact]
    public void Per_row_modulation()
    {
        RowModulationChecks.AdaLnRows(Backend, 1, 1, 1, 1);
        RowModulationChecks.AdaLnRows(Backend, 7, 300, 2, 2);
        RowModulationChecks.AdaLnRows(Backend, 30, 1536, 30, 3, inPlace: true, baseType: DType.BF16);
        RowModulationChecks.GemmRows(Backend, 67, 70, 45, 2, 4);
        RowModulationChecks.GemmRows(Backend, 40, 65, 33, 40, 5, DType.BF16, residualIsY: true, withBias: false);
        RowModulationChecks.BadArgumentsAreRejected(Backend);
    }

    [OpenCLFact]
    public void Norms()
    {
        IlgpuChecks.Norms(Backend, 1, 1, 1);
        IlgpuChecks.Norms(Backend, 7, 300, 2);
        IlgpuChecks.Norms(Backend, 3, 1536, 3);
    }

    [OpenCLFact]
    public void Elementwise_layout_and_copy()
    {
        int n = 1000;
        float[] a = Random(n, 1, 4f), b = Random(n, 2, 4f);
        using var at = Upload(Backend, a, [n]);
        using var bt = Upload(Backend, b, [n]);
        using (var y = Poisoned(Backend, n))
        {
            Backend.GeluTanh(at, y);
            AssertClose(Reference.Map(D(a), Reference.GeluTanh), Download(Backend, y), 1e-5, "gelu");
            Backend.Silu(at, y);
            AssertClose(Reference.Map(D(a), Reference.Silu), Download(Backend, y), 1e-5, "silu");
            Backend.CfgCombine(at, bt, 5f, y);
            AssertClose(Reference.Zip(D(a), D(b), (u, c) => u + 5 * (c - u)), Download(Backend, y), 1e-5, "cfg");
            Backend.LinearCombination([0.5f, -1f, 2f], [at, bt, at], y);
            AssertClose(Reference.LinearCombination([0.5, -1, 2], [D(a), D(b), D(a)]), Download(Backend, y), 1e-5, "combination");
        }
        float[] x = Random(4 * 6 * 8 * 10, 3);
        using var xt = Upload(Backend, x, [4, 6, 8, 10]);
        using (var y = Poisoned(Backend, 6 * 4 * 5, 4 * 2 * 2))
        {
            Backend.Patchify(xt, 1, 2, 2, y);
            AssertExact(Reference.Patchify(D(x), 4, 6, 8, 10, 1, 2, 2), Download(Backend, y));
        }
        using (var y = Backend.Allocate(DType.BF16, 10, 8, 6, 4))
        {
            Backend.Copy(xt.Permute(3, 2, 1, 0), y);
            var t = new double[x.Length];
            for (int c = 0; c < 4; c++)
                for (int f = 0; f < 6; f++)
                    for (int h = 0; h < 8; h++)
                        for (int w = 0; w < 10; w++)
                            t[((w * 8 + h) * 6 + f) * 4 + c] = Round([x[((c * 6 + f) * 8 + h) * 10 + w]], DType.BF16)[0];
            AssertExact(t, Download(Backend, y));
        }
    }
}
