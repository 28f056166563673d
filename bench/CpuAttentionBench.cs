using BenchmarkDotNet.Attributes;
using Sora.Kernels.Cpu;
using Sora.Runtime;

namespace Sora.Bench;

/// <summary>
/// Attention at the shapes of torch_peer.py: self-attention "S x H x D" (keys = queries) and cross-attention
/// to 512 text tokens ("S x H x D x L"); FLOPs 4·H·S·L·D as torch_peer counts them.
/// </summary>
[Config(typeof(CpuBenchConfig))]
public class CpuAttentionBench : ICpuBenchWork, IDisposable
{
    [Params("1560x12x128", "4096x12x128", "2048x8x64", "4096x12x128x512")]
    public string Shape = "1560x12x128";

    private CpuBackend _backend = null!;
    private Tensor _q = null!, _k = null!, _v = null!, _o = null!;
    private AttentionOptions _options = null!;

    private (int S, int H, int D, int L) Dims
    {
        get
        {
            int[] d = BenchData.Dims(Shape);
            return (d[0], d[1], d[2], d.Length > 3 ? d[3] : d[0]);
        }
    }

    public (double, string) Work
    {
        get
        {
            var (s, h, d, l) = Dims;
            return (4.0 * h * s * l * d, "GFLOP/s");
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        var (s, h, d, l) = Dims;
        _backend = new CpuBackend(2);
        _q = BenchData.Random(1, DType.F32, s, h, d);
        _k = BenchData.Random(2, DType.F32, l, h, d);
        _v = BenchData.Random(3, DType.F32, l, h, d);
        _o = _backend.Allocate(DType.F32, s, h, d);
        _options = new AttentionOptions { Scale = 1 / MathF.Sqrt(d) };
    }

    [Benchmark]
    public void Attention() => _backend.Attention(_q, _k, _v, _o, _options);

    [GlobalCleanup]
    public void Dispose()
    {
        _q?.Dispose();
        _k?.Dispose();
        _v?.Dispose();
        _o?.Dispose();
        _backend?.Dispose();
        GC.SuppressFinalize(this);
    }
}
