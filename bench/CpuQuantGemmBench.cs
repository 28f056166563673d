using BenchmarkDotNet.Attributes;
using Sora.Kernels.Cpu;
using Sora.Runtime;
using Sora.Runtime.Gguf;

namespace Sora.Bench;

/// <summary>
/// y = x·Wᵀ at the FFN shape ("MxKxN" as <see cref="CpuGemmBench"/>) with W stored as float32 or in a ggml block format
/// (the same random values quantised by ggml's reference quantisers), expanded while the GEMM packs its panels; 2 threads.
/// </summary>
[Config(typeof(CpuBenchConfig))]
public class CpuQuantGemmBench : ICpuBenchWork, IDisposable
{
    [Params("4096x1536x8960")]
    public string Shape = "4096x1536x8960";

    [Params("f32", "q8_0", "q4_K")]
    public string Weights = "f32";

    private CpuBackend _backend = null!;
    private Tensor _x = null!, _y = null!, _dense = null!;
    private DeviceBytes? _blocks;
    private Weight _w = null!;

    public (double, string) Work => BenchData.GemmWork(Shape);

    [GlobalSetup]
    public void Setup()
    {
        int[] d = BenchData.Dims(Shape);
        _backend = new CpuBackend(2);
        _x = BenchData.Random(1, DType.F32, d[0], d[1]);
        _y = _backend.Allocate(DType.F32, d[0], d[2]);
        _dense = BenchData.Random(2, DType.F32, d[2], d[1]);
        if (Weights == "f32")
        {
            _w = new DenseWeight(_dense);
            return;
        }
        var type = Weights == "q8_0" ? GgmlType.Q8_0 : GgmlType.Q4_K;
        float[] values = _dense.ToFloatArray();
        var bytes = new byte[GgmlTypes.ByteCount(type, values.Length)];
        GgmlQuantize.Blocks(type, values, bytes);
        _blocks = _backend.Upload(bytes);
        _w = new BlockWeight(type, _blocks, d[2], d[1]);
    }

    [Benchmark]
    public void Gemm() => _backend.Gemm(_x, _w, null, _y);

    [GlobalCleanup]
    public void Dispose()
    {
        _blocks?.Dispose();
        _x?.Dispose();
        _y?.Dispose();
        _dense?.Dispose();
        _backend?.Dispose();
        GC.SuppressFinalize(this);
    }
}
