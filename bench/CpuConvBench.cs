using BenchmarkDotNet.Attributes;
using Sora.Kernels.Cpu;
using Sora.Runtime;

namespace Sora.Bench;

/// <summary>
/// Causal 3×3×3 convolutions of the Wan VAE decoder at the shapes of torch_peer.py ("CxTxHxW", C in = C out,
/// time padded 2 on the left, space 1 each side, so the output is T×H×W) and at the Wan2.2 decoder's per-frame
/// calls ("CxTxHxW+2": one frame after a two-frame time cache); FLOPs 2·C²·27·T·H·W either way. Each runs through
/// the backend's choice (Winograd F(4×4, 3×3) for these shapes) and through the implicit GEMM it replaced.
/// </summary>
[Config(typeof(CpuBenchConfig))]
public class CpuConvBench : ICpuBenchWork, IDisposable
{
    [Params("96x5x60x104", "192x5x120x208", "384x3x30x52", "1024x1x16x16+2", "1024x1x32x32+2", "512x1x64x64+2", "256x1x128x128+2")]
    public string Shape = "96x5x60x104";

    [Params(true, false)]
    public bool Winograd = true;

    private static readonly Conv3dGeometry Causal = new(3, 3, 3, PadT0: 2, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1);
    private CpuBackend _backend = null!;
    private Tensor _x = null!, _w = null!, _b = null!, _y = null!;
    private Tensor? _cache;

    public (double, string) Work
    {
        get
        {
            int[] d = Dims(out _);
            return (2.0 * d[0] * d[0] * 27 * d[1] * d[2] * d[3], "GFLOP/s");
        }
    }

    private int[] Dims(out int cacheFrames)
    {
        string[] parts = Shape.Split('+');
        cacheFrames = parts.Length > 1 ? int.Parse(parts[1]) : 0;
        return BenchData.Dims(parts[0]);
    }

    [GlobalSetup]
    public void Setup()
    {
        int[] d = Dims(out int cacheFrames);
        _backend = new CpuBackend(2) { ConvAlgorithm = Winograd ? ConvAlgorithm.Auto : ConvAlgorithm.ImplicitGemm };
        _x = BenchData.Random(1, DType.F32, d);
        _w = BenchData.Random(2, DType.F32, d[0], d[0], 3, 3, 3);
        _b = BenchData.Random(3, DType.F32, d[0]);
        _y = _backend.Allocate(DType.F32, d);
        if (cacheFrames > 0) _cache = BenchData.Random(4, DType.F32, d[0], cacheFrames, d[2], d[3]);
    }

    [Benchmark]
    public void Conv3d() => _backend.Conv3d(_x, _w, _b, _y, Causal, _cache);

    [GlobalCleanup]
    public void Dispose()
    {
        _x?.Dispose();
        _w?.Dispose();
        _b?.Dispose();
        _y?.Dispose();
        _cache?.Dispose();
        _backend?.Dispose();
        GC.SuppressFinalize(this);
    }
}
