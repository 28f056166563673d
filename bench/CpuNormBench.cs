using BenchmarkDotNet.Attributes;
using Sora.Kernels.Cpu;
using Sora.Runtime;

namespace Sora.Bench;

/// <summary>
/// Norms over rows of x [4096, 1536] (torch_peer.py's adaln_modulate shape); throughput in GB/s (one read and
/// one write of x), with a plain copy of the same tensor as the bandwidth yardstick.
/// </summary>
[Config(typeof(CpuBenchConfig))]
public class CpuNormBench : ICpuBenchWork, IDisposable
{
    private const int M = 4096, N = 1536;
    private CpuBackend _backend = null!;
    private Tensor _x = null!, _y = null!, _shift = null!, _scale = null!, _gamma = null!;

    public (double, string) Work => (2.0 * 4 * M * N, "GB/s");

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend(2);
        _x = BenchData.Random(1, DType.F32, M, N);
        _shift = BenchData.Random(2, DType.F32, N);
        _scale = BenchData.Random(3, DType.F32, N);
        _gamma = BenchData.Random(4, DType.F32, M);
        _y = _backend.Allocate(DType.F32, M, N);
    }

    [Benchmark(Baseline = true)]
    public void Copy() => _backend.Copy(_x, _y);

    [Benchmark]
    public void AdaLnModulate() => _backend.AdaLnModulate(_x, _shift, _scale, 1e-6f, _y);

    [Benchmark]
    public void LayerNormAffine() => _backend.LayerNorm(_x, _scale, _shift, 1e-6f, _y);

    [Benchmark]
    public void RmsNorm() => _backend.RmsNorm(_x, _scale, 1e-6f, _y);

    [Benchmark]
    public void ChannelRmsNorm() => _backend.ChannelRmsNorm(_x, _gamma, null, _y);

    [GlobalCleanup]
    public void Dispose()
    {
        _x?.Dispose();
        _y?.Dispose();
        _shift?.Dispose();
        _scale?.Dispose();
        _gamma?.Dispose();
        _backend?.Dispose();
        GC.SuppressFinalize(this);
    }
}
