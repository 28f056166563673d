using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Sora.Kernels.Cpu;
using Sora.Native.Wan;
using Sora.Runtime;

namespace Sora.Bench;

/// <summary>
/// Whole-model cases take tens of seconds per call: one call per iteration, one warm-up and the median of three,
/// as bench/diffusers_peer.py measures its side (bench/RESULTS.md).
/// </summary>
public sealed class WholeModelBenchConfig : ManualConfig
{
    public WholeModelBenchConfig()
    {
        AddJob(Job.Default.WithWarmupCount(1).WithIterationCount(3).WithInvocationCount(1).WithUnrollFactor(1).WithLaunchCount(1));
        AddColumn(StatisticColumn.Median, StatisticColumn.Min, StatisticColumn.Max);
    }
}

/// <summary>
/// The Wan2.2 VAE (Wan2.2-TI2V-5B's widths, generated weights) decoding latents [48, 3, 16, 16] to 9 frames of
/// 256×256 on the CPU backend with 2 threads: diffusers_peer.py's vae_decode case.
/// </summary>
[Config(typeof(WholeModelBenchConfig))]
public class WanVaeDecodeBench : IDisposable
{
    private string _dir = null!;
    private IBackend _backend = null!;
    private WanVae _vae = null!;
    private Tensor _latents = null!;

    [GlobalSetup]
    public void Setup() => Setup(new CpuBackend(2));

    /// <summary>Writes the model and loads it onto <paramref name="backend"/>, which this instance then owns.</summary>
    internal void Setup(IBackend backend)
    {
        _dir = Directory.CreateTempSubdirectory("sora-bench-vae22-").FullName;
        WanBenchModels.WriteVae22(_dir);
        _backend = backend;
        _vae = WanVae.Load(_dir, _backend);
        _latents = BenchData.Random(1, DType.F32, WanBenchModels.Vae22.ZDim, 3, 16, 16);
    }

    [Benchmark]
    public void Decode()
    {
        using var video = _vae.Decode(_latents);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _latents?.Dispose();
        _vae?.Dispose();
        _backend?.Dispose();
        if (_dir is not null) Directory.Delete(_dir, recursive: true);
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// One image-to-video denoising step of a transformer shaped like Wan2.1-T2V-1.3B (generated weights) on latents
/// [16, 3, 32, 32] (768 tokens): per-token timesteps (the 256 tokens of latent frame 0 at 0, the rest at t, as
/// WanImageToVideoPipeline with expand_timesteps gives them) and classifier-free guidance over a prompt and a
/// negative prompt of 512 text rows each, run as one batch of 2, then u + g·(c − u): diffusers_peer.py's
/// i2v_cfg_step case. <see cref="Step"/> reuses the projected prompts as the pipeline does at every step;
/// <see cref="StepWithTextProjection"/> also projects them (the text embedder and 30 blocks' cross-attention keys
/// and values), which diffusers repeats inside every call.
/// </summary>
[Config(typeof(WholeModelBenchConfig))]
public class WanTransformerStepBench : IDisposable
{
    private const int Frames = 3, Height = 32, Width = 32, TextRows = 512;
    private const float Timestep = 937f, Guidance = 5f;

    private string _dir = null!;
    private IBackend _backend = null!;
    private WanTransformer _model = null!;
    private Tensor _latents = null!, _prompt = null!, _negative = null!, _velocity = null!;
    private WanTextContext _text = null!;
    private float[] _tokenTimesteps = null!;

    [GlobalSetup]
    public void Setup() => Setup(new CpuBackend(2));

    /// <summary>Writes the model and loads it onto <paramref name="backend"/>, which this instance then owns.</summary>
    internal void Setup(IBackend backend)
    {
        var c = WanBenchModels.Transformer13B;
        _dir = Directory.CreateTempSubdirectory("sora-bench-dit13b-").FullName;
        WanBenchModels.WriteTransformer13B(_dir);
        _backend = backend;
        _model = WanTransformer.Load(_dir, _backend);
        _latents = BenchData.Random(1, DType.F32, c.Channels, Frames, Height, Width);
        _prompt = BenchData.Random(2, DType.F32, TextRows, c.TextDim);
        _negative = BenchData.Random(3, DType.F32, TextRows, c.TextDim);
        _velocity = _backend.Allocate(DType.F32, c.Channels, Frames, Height, Width);
        _text = _model.EncodeText(_prompt, _negative);
        int frameTokens = Height / 2 * (Width / 2);
        _tokenTimesteps = Enumerable.Range(0, Frames * frameTokens).Select(i => i < frameTokens ? 0f : Timestep).ToArray();
    }

    [Benchmark]
    public void Step() => GuidedVelocity(_text);

    [Benchmark]
    public void StepWithTextProjection()
    {
        using var text = _model.EncodeText(_prompt, _negative);
        GuidedVelocity(text);
    }

    private void GuidedVelocity(WanTextContext text)
    {
        using var both = _model.Forward(_latents, _tokenTimesteps, text);
        var single = both.Shape[1..];
        _backend.CfgCombine(both.Slice(0, 1, 1).Reshape(single), both.Slice(0, 0, 1).Reshape(single), Guidance, _velocity);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _text?.Dispose();
        _velocity?.Dispose();
        _latents?.Dispose();
        _prompt?.Dispose();
        _negative?.Dispose();
        _model?.Dispose();
        _backend?.Dispose();
        if (_dir is not null) Directory.Delete(_dir, recursive: true);
        GC.SuppressFinalize(this);
    }
}
