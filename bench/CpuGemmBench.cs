using BenchmarkDotNet.Attributes;
using Sora.Kernels.Cpu;
using Sora.Runtime;

namespace Sora.Bench;

/// <summary>y = x·Wᵀ at the GEMM shapes of torch_peer.py ("MxKxN"), float32 and bfloat16 weights, 2 threads.</summary>
[Config(typeof(CpuBenchConfig))]
public class CpuGemmBench : ICpuBenchWork, IDisposable
{
    [Params("1024x1024x1024", "4096x1536x1536", "4096x1536x8960", "4096x8960x1536")]
    public string Shape = "1024x1024x1024";

    [Params(DType.F32, DType.BF16)]
    public DType Weights = DType.F32;

    private CpuBackend _backend = null!;
    private Tensor _x = null!, _w = null!, _y = null!;

    public (double, string) Work => BenchData.GemmWork(Shape);

    [GlobalSetup]
    public void Setup()
    {
        int[] d = BenchData.Dims(Shape);
        _backend = new CpuBackend(2);
        _x = BenchData.Random(1, DType.F32, d[0], d[1]);
        _w = BenchData.Random(2, Weights, d[2], d[1]);
        _y = _backend.Allocate(DType.F32, d[0], d[2]);
    }

    [Benchmark]
    public void Gemm() => _backend.Gemm(_x, _w, null, _y);

    [GlobalCleanup]
    public void Dispose()
    {
        _x?.Dispose();
        _w?.Dispose();
        _y?.Dispose();
        _backend?.Dispose();
        GC.SuppressFinalize(this);
    }
}
