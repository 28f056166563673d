using Sora.Native.Pipeline;
using Sora.Native.Video;
using Sora.Runtime;

namespace Sora.Cli.Serve;

/// <summary>A <see cref="WanPipeline"/> on its backend, kept loaded (text encoder included) for the server's lifetime.</summary>
public sealed class WanVideoEngine : IVideoEngine
{
    private readonly IBackend _backend;
    private readonly WanPipeline _pipeline;

    private WanVideoEngine(string modelId, IBackend backend, WanPipeline pipeline)
    {
        ModelId = modelId;
        _backend = backend;
        _pipeline = pipeline;
        var d = pipeline.Defaults;
        int[] patch = pipeline.Transformer.Config.PatchSize;
        int multiple = pipeline.Vae.Config.SpatialFactor * Math.Max(patch[1], patch[2]);
        Geometry = new ClipGeometry(d.Fps, pipeline.Vae.Config.TemporalFactor, multiple, d.Frames, d.Width, d.Height);
    }

    public string ModelId { get; }
    public ClipGeometry Geometry { get; }
    public int DefaultSteps => _pipeline.Defaults.Steps;
    public double DefaultGuidance => _pipeline.Defaults.Guidance;

    /// <summary>Loads the model folder on <paramref name="device"/>; the model's id is the folder's name.</summary>
    public static WanVideoEngine Load(string modelDir, string device)
    {
        var backend = Commands.CreateBackend(device);
        try
        {
            var pipeline = WanPipeline.Load(modelDir, backend);
            pipeline.KeepTextEncoder = true;
            return new WanVideoEngine(new DirectoryInfo(modelDir).Name, backend, pipeline);
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    public string DeviceName => $"{_backend.Device.Name} ({_backend.Device.Kind})";

    public VideoFrames Generate(JobSpec spec, JobInputs inputs, IProgress<StepProgress> progress, CancellationToken ct)
    {
        var options = new GenerationOptions
        {
            Prompt = spec.Prompt,
            NegativePrompt = spec.NegativePrompt,
            Frames = spec.Frames,
            Width = spec.Width,
            Height = spec.Height,
            Steps = spec.Steps,
            Guidance = spec.Guidance,
            Seed = spec.Seed,
        };
        if (spec.Kind != JobKind.Create || inputs.Image is not null || inputs.Clip is not null)
            throw new NotSupportedException($"{spec.Kind} jobs need the pipeline's image and video conditioning, which this build lacks");
        var result = _pipeline.Generate(options, progress, ct);
        result.Latents?.Dispose();
        return result.Video ?? throw new InvalidOperationException("the pipeline returned no video");
    }

    public void Dispose()
    {
        _pipeline.Dispose();
        _backend.Dispose();
    }
}
