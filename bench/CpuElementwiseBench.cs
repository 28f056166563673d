using BenchmarkDotNet.Attributes;
using Sora.Kernels.Cpu;
using Sora.Runtime;

namespace Sora.Bench;

/// <summary>
/// Elementwise ops over [4096, 8960] (torch_peer.py's gelu_tanh shape, the FFN hidden size); GB/s counts one
/// read and one write per element (a read of the second operand more for binary ops is not counted).
/// </summary>
[Config(typeof(CpuBenchConfig))]
public class CpuElementwiseBench : ICpuBenchWork, IDisposable
{
    private const int M = 4096, N = 8960;
    private CpuBackend _backend = null!;
    private Tensor _x = null!, _b = null!, _y = null!;

    public (double, string) Work => (2.0 * 4 * M * N, "GB/s");

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend(2);
        _x = BenchData.Random(1, DType.F32, M, N);
        _b = BenchData.Random(2, DType.F32, M, N);
        _y = _backend.Allocate(DType.F32, M, N);
    }

    [Benchmark(Baseline = true)]
    public void Copy() => _backend.Copy(_x, _y);

    [Benchmark]
    public void GeluTanh() => _backend.GeluTanh(_x, _y);

    [Benchmark]
    public void Silu() => _backend.Silu(_x, _y);

    [Benchmark]
    public void Add() => _backend.Add(_x, _b, _y);

    [Benchmark]
    public void CfgCombine() => _backend.CfgCombine(_x, _b, 5f, _y);

    [GlobalCleanup]
    public void Dispose()
    {
        _x?.Dispose();
        _b?.Dispose();
        _y?.Dispose();
        _backend?.Dispose();
        GC.SuppressFinalize(this);
    }
}
