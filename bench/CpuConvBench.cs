using BenchmarkDotNet.Attributes;
using Sora.Kernels.Cpu;
using Sora.Runtime;

namespace Sora.Bench;

/// <summary>
/// Causal 3×3×3 convolutions of the Wan VAE decoder at the shapes of torch_peer.py ("CxTxHxW", C in = C out,
/// time padded 2 on the left, space 1 each side, so the output is T×H×W); FLOPs 2·C²·27·T·H·W.
/// </summary>
[Config(typeof(CpuBenchConfig))]
public class CpuConvBench : ICpuBenchWork, IDisposable
{
    [Params("96x5x60x104", "192x5x120x208", "384x3x30x52")]
    public string Shape = "96x5x60x104";

    private static readonly Conv3dGeometry Causal = new(3, 3, 3, PadT0: 2, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1);
    private CpuBackend _backend = null!;
    private Tensor _x = null!, _w = null!, _b = null!, _y = null!;

    public (double, string) Work
    {
        get
        {
            int[] d = BenchData.Dims(Shape);
            return (2.0 * d[0] * d[0] * 27 * d[1] * d[2] * d[3], "GFLOP/s");
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        int[] d = BenchData.Dims(Shape);
        _backend = new CpuBackend(2);
        _x = BenchData.Random(1, DType.F32, d);
        _w = BenchData.Random(2, DType.F32, d[0], d[0], 3, 3, 3);
        _b = BenchData.Random(3, DType.F32, d[0]);
        _y = _backend.Allocate(DType.F32, d);
    }

    [Benchmark]
    public void Conv3d() => _backend.Conv3d(_x, _w, _b, _y, Causal);

    [GlobalCleanup]
    public void Dispose()
    {
        _x?.Dispose();
        _w?.Dispose();
        _b?.Dispose();
        _y?.Dispose();
        _backend?.Dispose();
        GC.SuppressFinalize(this);
    }
}
