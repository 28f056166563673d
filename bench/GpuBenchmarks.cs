using BenchmarkDotNet.Attributes;
using Sora.Kernels;
using Sora.Kernels.Gpu;
using Sora.Runtime;

namespace Sora.Bench;

/// <summary>
/// ILGPU backend ops on the device named by SORA_BENCH_DEVICE ("cuda", "opencl", "ilgpu-cpu"; default: the
/// first of cuda, opencl that is usable, else ilgpu-cpu). Shapes are Wan2.1-1.3B-like (d_model 1536, 12 heads
/// of 128, FFN 8960); every op ends with Synchronize so the time covers the device work. Kernels are compiled
/// and warmed in GlobalSetup. GFLOP/s = 2·M·N·K / time (GEMM), 4·S²·H·D / time (attention).
/// Run: dotnet run -c Release --project bench -- --filter '*Gpu*'   (add --inProcess inside the OpenCL chroot)
/// </summary>
[MemoryDiagnoser(false)]
public class GpuGemmBenchmarks
{
    private IlgpuBackend _backend = null!;
    private Tensor _x = null!, _w = null!, _b = null!, _y = null!;

    [Params(1024)]
    public int M { get; set; }

    [Params(1536)]
    public int N { get; set; }

    [Params(1536)]
    public int K { get; set; }

    [Params(DType.F32, DType.BF16)]
    public DType Weights { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _backend = GpuBench.CreateBackend();
        _x = GpuBench.Random(_backend, DType.F32, M, K);
        _w = GpuBench.Random(_backend, Weights, N, K);
        _b = GpuBench.Random(_backend, DType.F32, N);
        _y = _backend.Allocate(DType.F32, M, N);
        Gemm();
    }

    [Benchmark]
    public void Gemm()
    {
        _backend.Gemm(_x, _w, _b, _y, GemmEpilogue.GeluTanh);
        _backend.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _x, _w, _b, _y }) t.Dispose();
        _backend.Dispose();
    }
}

public class GpuAttentionBenchmarks
{
    private IlgpuBackend _backend = null!;
    private Tensor _q = null!, _k = null!, _v = null!, _o = null!;

    [Params(1560)]
    public int Tokens { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _backend = GpuBench.CreateBackend();
        _q = GpuBench.Random(_backend, DType.F32, Tokens, 12, 128);
        _k = GpuBench.Random(_backend, DType.F32, Tokens, 12, 128);
        _v = GpuBench.Random(_backend, DType.F32, Tokens, 12, 128);
        _o = _backend.Allocate(DType.F32, Tokens, 12, 128);
        Attention();
    }

    [Benchmark]
    public void Attention()
    {
        _backend.Attention(_q, _k, _v, _o, new AttentionOptions { Scale = 1f / MathF.Sqrt(128) });
        _backend.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _q, _k, _v, _o }) t.Dispose();
        _backend.Dispose();
    }
}

public class GpuConvBenchmarks
{
    private IlgpuBackend _backend = null!;
    private Tensor _x = null!, _w = null!, _b = null!, _y = null!;
    private static readonly Conv3dGeometry Causal3 = new(3, 3, 3, PadT0: 2, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1);

    /// <summary>A Wan VAE decoder conv: 96 → 96 channels, 3×3×3 causal, [96, 4, 60, 104].</summary>
    [GlobalSetup]
    public void Setup()
    {
        _backend = GpuBench.CreateBackend();
        _x = GpuBench.Random(_backend, DType.F32, 96, 4, 60, 104);
        _w = GpuBench.Random(_backend, DType.F32, 96, 96, 3, 3, 3);
        _b = GpuBench.Random(_backend, DType.F32, 96);
        _y = _backend.Allocate(DType.F32, 96, 4, 60, 104);
        Conv3d();
    }

    [Benchmark]
    public void Conv3d()
    {
        _backend.Conv3d(_x, _w, _b, _y, Causal3);
        _backend.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _x, _w, _b, _y }) t.Dispose();
        _backend.Dispose();
    }
}

internal static class GpuBench
{
    public static IlgpuBackend CreateBackend()
    {
        string? device = Environment.GetEnvironmentVariable("SORA_BENCH_DEVICE");
        if (string.IsNullOrEmpty(device))
        {
            var usable = Backends.List().Where(d => d.Usable).Select(d => d.Kind).ToHashSet();
            device = usable.Contains("cuda") ? "cuda" : usable.Contains("opencl") ? "opencl" : "ilgpu-cpu";
        }
        return Backends.Create(device) as IlgpuBackend
            ?? throw new ArgumentException($"SORA_BENCH_DEVICE={device} is not an ILGPU device (cuda, opencl, ilgpu-cpu)");
    }

    public static Tensor Random(IBackend backend, DType dtype, params int[] shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        var rng = new Random(42);
        var data = new float[n];
        for (long i = 0; i < n; i++) data[i] = (float)(rng.NextDouble() * 2 - 1);
        using var host = Tensor.FromArray(data, shape, dtype);
        return backend.ToDevice(host);
    }
}
