using Xunit;
using Xunit.Abstractions;
using Sora.Native.Wan;
using Sora.Runtime;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// The chunked decode holds only one chunk's activations and the per-layer caches at a time: peak backend memory
/// beyond the output tensor must not grow with the number of frames.
/// </summary>
public sealed class VaeMemoryTests(ITestOutputHelper output)
{
    [Fact]
    public void Decode_working_memory_does_not_grow_with_frame_count()
    {
        using var dir = new TempDir();
        WriteRandomVae(dir.Path, baseDim: 8, dimMult: [1, 2, 2, 2], z: 4, numResBlocks: 1, seed: 5);
        using var backend = NewCpuBackend();
        using var vae = WanVae.Load(dir.Path, backend);
        AssertFlat(backend.Device.Name, MeasureDecode(backend, vae, 5, 4, 4, checkValues: true), MeasureDecode(backend, vae, 9, 4, 4, checkValues: true));
    }

    /// <summary>
    /// The Wan2.1 VAE (base 96, [1,2,4,4], 2 res blocks, z 16) at the real 480×832, 17 vs 33 and 81 frames, decode and
    /// encode: exact allocation accounting on a backend that allocates no memory and computes nothing (the
    /// chunk schedule, hence every allocation, depends only on shapes).
    /// </summary>
    [Fact]
    public void Working_memory_at_wan21_size_and_480p_is_flat()
    {
        using var dir = new TempDir();
        WriteSafetensors(Path.Combine(dir.Path, "diffusion_pytorch_model.safetensors"),
            VaeTensorShapes(96, [1, 2, 4, 4], 16, 2, [false, true, true]), data: null);
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), """{"_class_name": "AutoencoderKLWan"}""");
        using var backend = new AllocationCountingBackend();
        using var vae = WanVae.Load(dir.Path, backend);
        var decode17 = MeasureDecode(backend, vae, 5, 60, 104);
        AssertFlat("decode, counted", decode17, MeasureDecode(backend, vae, 9, 60, 104));
        AssertFlat("decode, counted", decode17, MeasureDecode(backend, vae, 21, 60, 104));
        AssertFlat("encode, counted", MeasureEncode(backend, vae, 17, 480, 832), MeasureEncode(backend, vae, 81, 480, 832));
    }

    /// <summary>
    /// The Wan2.2 VAE (base 160, decoder base 256, [1,2,4,4], 2 res blocks, z 48, patch 2) at the real 704×1280,
    /// decode at 17, 49 and 121 frames and encode at 17 and 121: exact allocation accounting as above.
    /// </summary>
    [Fact]
    public void Working_memory_at_wan22_size_and_704p_is_flat()
    {
        using var dir = new TempDir();
        WriteSafetensors(Path.Combine(dir.Path, "diffusion_pytorch_model.safetensors"),
            Vae22TensorShapes(160, 256, [1, 2, 4, 4], 48, 2, [false, true, true]), data: null);
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), """
            {"_class_name": "AutoencoderKLWan", "base_dim": 160, "decoder_base_dim": 256, "z_dim": 48, "is_residual": true,
             "patch_size": 2, "in_channels": 12, "out_channels": 12, "scale_factor_spatial": 16, "scale_factor_temporal": 4,
             "latents_mean": [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],
             "latents_std": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}
            """);
        using var backend = new AllocationCountingBackend();
        using var vae = WanVae.Load(dir.Path, backend);
        var decode17 = MeasureDecode(backend, vae, 5, 44, 80);
        AssertFlat("Wan2.2 decode, counted", decode17, MeasureDecode(backend, vae, 13, 44, 80));
        AssertFlat("Wan2.2 decode, counted", decode17, MeasureDecode(backend, vae, 31, 44, 80));
        AssertFlat("Wan2.2 encode, counted", MeasureEncode(backend, vae, 17, 704, 1280), MeasureEncode(backend, vae, 121, 704, 1280));
    }

    /// <summary>The small Wan2.2 VAE of the fixtures with real arithmetic: decode working memory does not grow with the frame count.</summary>
    [Fact]
    public void Wan22_decode_working_memory_does_not_grow_with_frame_count()
    {
        using var backend = NewCpuBackend();
        using var vae = WanVae.Load(Fixture22VaeDir, backend);
        AssertFlat(backend.Device.Name, MeasureDecode(backend, vae, 5, 2, 2, checkValues: true), MeasureDecode(backend, vae, 9, 2, 2, checkValues: true));
    }

    /// <summary>
    /// The decode measurement with real arithmetic on a Wan2.1-sized VAE (~508 MB of random weights written to a
    /// temporary folder), at a small size. Opt-in: it takes minutes on 2 cores.
    /// </summary>
    [OptInFact("SORA_VAE_MEMORY_WAN21")]
    public void Decode_working_memory_does_not_grow_with_frame_count_at_wan21_size()
    {
        int size = int.Parse(Environment.GetEnvironmentVariable("SORA_VAE_MEMORY_LATENT") ?? "4");
        using var dir = new TempDir();
        WriteRandomVae(dir.Path, baseDim: 96, dimMult: [1, 2, 4, 4], z: 16, numResBlocks: 2, seed: 7);
        using var backend = NewCpuBackend();
        using var vae = WanVae.Load(dir.Path, backend);
        AssertFlat(backend.Device.Name, MeasureDecode(backend, vae, 5, size, size, checkValues: true), MeasureDecode(backend, vae, 9, size, size, checkValues: true));
    }

    private sealed record Run(string What, long Peak, long Output, TimeSpan Elapsed = default)
    {
        public long Working => Peak - Output;
    }

    private void AssertFlat(string label, Run small, Run large)
    {
        output.WriteLine(label);
        foreach (var r in new[] { small, large })
            output.WriteLine($"  {r.What}: peak {r.Peak:N0} B = output {r.Output:N0} B + working {r.Working:N0} B ({r.Elapsed.TotalSeconds:F1} s)");
        long outputGrowth = large.Output - small.Output;
        Assert.True(outputGrowth > 0);
        // Peak growth beyond the output's own growth: far less than the output growth (5% slack).
        Assert.True(large.Working - small.Working <= outputGrowth / 20,
            $"working memory grew from {small.Working:N0} B to {large.Working:N0} B while the output grew by {outputGrowth:N0} B");
    }

    /// <summary>Peak bytes allocated during one decode of t latent frames (above what was live before it) and the bytes the output holds.</summary>
    private static Run MeasureDecode(IBackend backend, WanVae vae, int t, int h, int w, bool checkValues = false)
    {
        var latents = new float[vae.ZDim * t * h * w];
        var rng = new Random(t);
        for (int i = 0; i < latents.Length; i++) latents[i] = 2 * rng.NextSingle() - 1;
        using var z = ToBackend(backend, latents, [vae.ZDim, t, h, w]);
        backend.Synchronize();
        long before = backend.Memory.CurrentBytes;
        backend.ResetPeakMemory();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var video = vae.Decode(z);
        backend.Synchronize();
        clock.Stop();
        long peak = backend.Memory.PeakBytes - before;
        long output = backend.Memory.CurrentBytes - before; // what the output holds (a pool rounds sizes up)
        if (checkValues) Assert.All(Read(backend, video), v => Assert.InRange(v, -1f, 1f)); // written everywhere (no NaN), clamped
        return new Run($"{video.Dim(1)} frames {video.Dim(2)}x{video.Dim(3)}", peak, output, clock.Elapsed);
    }

    /// <summary>Peak bytes allocated during one encode of f frames and the bytes of mean plus logvar.</summary>
    private static Run MeasureEncode(IBackend backend, WanVae vae, int f, int h, int w)
    {
        using var video = backend.Allocate(DType.F32, vae.Config.PixelInChannels, f, h, w);
        long before = backend.Memory.CurrentBytes;
        backend.ResetPeakMemory();
        var (mean, logVar) = vae.Encode(video);
        long peak = backend.Memory.PeakBytes - before;
        long output = backend.Memory.CurrentBytes - before;
        using (mean)
        using (logVar)
            return new Run($"{f} frames {h}x{w} → {mean.ShapeString} ×2", peak, output);
    }
}

/// <summary>
/// Counts what a run allocates without holding memory or computing: storages have the right length but no
/// bytes behind them, and every op is a no-op. For memory accounting of schedules that depend only on shapes.
/// </summary>
internal sealed class AllocationCountingBackend : IBackend
{
    private long _current, _peak;

    private sealed class CountedStorage : Storage
    {
        private readonly AllocationCountingBackend _owner;
        public CountedStorage(AllocationCountingBackend owner, DType dtype, long length) : base(dtype, length)
        {
            _owner = owner;
            owner._current += ByteLength;
            owner._peak = Math.Max(owner._peak, owner._current);
        }
        public override string Location => "counted";
        protected override void Release() => _owner._current -= ByteLength;
    }

    public DeviceInfo Device { get; } = new("counted", "allocation counter (no compute)", "counted", 0);
    public MemoryStats Memory => new(_current, _peak);
    public void ResetPeakMemory() => _peak = _current;
    public long PooledBytes => 0;
    public void TrimPool() { }
    public void Synchronize() { }
    public void Dispose() { }

    public Tensor Allocate(DType dtype, params int[] shape)
        => new(new CountedStorage(this, dtype, shape.Aggregate(1L, (a, b) => a * b)), shape, ownsStorage: true);
    public Tensor ToDevice(Tensor host) => Allocate(host.DType, host.Shape);
    public Tensor ToHost(Tensor tensor) => Tensor.ZerosHost(tensor.DType, tensor.Shape);
    public void Copy(Tensor src, Tensor dst) { }
    public void Gemm(Tensor x, Tensor w, Tensor? bias, Tensor y, GemmEpilogue epilogue = GemmEpilogue.None, Tensor? residual = null, Tensor? gate = null) { }
    public void Attention(Tensor q, Tensor k, Tensor v, Tensor o, AttentionOptions options) { }
    public void ApplyRope(Tensor x, Tensor cos, Tensor sin) { }
    public void Conv3d(Tensor x, Tensor w, Tensor? bias, Tensor y, Conv3dGeometry geometry, Tensor? timeCache = null) { }
    public void LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps, Tensor y) { }
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y) { }
    public void ChannelRmsNorm(Tensor x, Tensor gamma, Tensor? beta, Tensor y) { }
    public void AdaLnModulate(Tensor x, Tensor shift, Tensor scale, float eps, Tensor y) { }
    public void GatedResidual(Tensor x, Tensor y, Tensor gate) { }
    public void AdaLnModulateRows(Tensor x, Tensor shiftBase, Tensor shift, Tensor scaleBase, Tensor scale, ReadOnlySpan<int> rowSets, float eps, Tensor y) { }
    public void GemmGatedRows(Tensor x, Tensor w, Tensor? bias, Tensor y, Tensor residual, Tensor gateBase, Tensor gate, ReadOnlySpan<int> rowSets) { }
    public void GeluTanh(Tensor x, Tensor y) { }
    public void Silu(Tensor x, Tensor y) { }
    public void Add(Tensor a, Tensor b, Tensor y) { }
    public void Mul(Tensor a, Tensor b, Tensor y) { }
    public void ScaleShift(Tensor x, float a, float b, Tensor y) { }
    public void Clamp(Tensor x, float min, float max, Tensor y) { }
    public void ChannelAffine(Tensor x, float[] scale, float[] shift, Tensor y) { }
    public void CfgCombine(Tensor uncond, Tensor cond, float guidance, Tensor y) { }
    public void Upsample2x(Tensor x, Tensor y) { }
    public void TimestepEmbedding(float[] timesteps, int dim, bool flipSinToCos, float downscaleFreqShift, Tensor y) { }
    public void Embedding(int[] ids, Tensor table, Tensor y) { }
    public void Patchify(Tensor x, int pt, int ph, int pw, Tensor y) { }
    public void Unpatchify(Tensor x, int pt, int ph, int pw, Tensor y) { }
    public void EulerStep(Tensor x, Tensor v, float sigma, float sigmaNext) { }
    public void LinearCombination(ReadOnlySpan<float> coefficients, ReadOnlySpan<Tensor> terms, Tensor y) { }
}
