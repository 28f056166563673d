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
        var g = pipeline.Geometry;
        Geometry = new ClipGeometry(d.Fps, g.TemporalFactor, g.SizeMultiple, d.Frames, d.Width, d.Height);
    }

    public string ModelId { get; }
    public ClipGeometry Geometry { get; }
    public int DefaultSteps => _pipeline.Defaults.Steps;
    public double DefaultGuidance => _pipeline.Defaults.Guidance;
    public int DefaultExtendFrames => new GenerationOptions().ExtendFrames;
    public double DefaultStrength => new GenerationOptions().Strength;

    public (int Width, int Height) SizeFor(int sourceWidth, int sourceHeight) => _pipeline.SizeFor(sourceWidth, sourceHeight);

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

    public int PassTokens(JobSpec spec)
    {
        var g = _pipeline.Geometry;
        int latentFrames = (spec.Frames - 1) / g.TemporalFactor + 1;
        int tokens = latentFrames / g.Patch[0] * (spec.Height / g.SpatialFactor / g.Patch[1]) * (spec.Width / g.SpatialFactor / g.Patch[2]);
        return spec.Guidance > 1.0 ? 2 * tokens : tokens;
    }

    /// <summary>
    /// Create: text (or with the image, image) to video. Remix and edit: the clip redrawn under the prompt (SDEdit at
    /// the job's strength). Extension: the model continues the clip from its last frames (see <see cref="Finish"/>).
    /// Every request is checked on its own; the valid ones begin together (<see cref="WanPipeline.Start(IReadOnlyList{GenerationOptions}, IReadOnlyList{IProgress{StepProgress}?}?, CancellationToken)"/>).
    /// </summary>
    public IReadOnlyList<Begun> Begin(IReadOnlyList<JobStart> jobs)
    {
        var results = new Begun[jobs.Count];
        var valid = new List<int>();
        var options = jobs.Select(Options).ToArray();
        for (int i = 0; i < jobs.Count; i++)
        {
            try
            {
                _pipeline.Validate(options[i]);
                valid.Add(i);
            }
            catch (ArgumentException e)
            {
                results[i] = new Begun(null, e);
            }
        }
        if (valid.Count == 0) return results;
        try
        {
            var work = _pipeline.Start(valid.Select(i => options[i]).ToArray(), valid.Select(i => (IProgress<StepProgress>?)jobs[i].Progress).ToArray());
            for (int k = 0; k < valid.Count; k++)
            {
                var (spec, inputs, _) = jobs[valid[k]];
                results[valid[k]] = new Begun(new EngineJob(work[k], spec, inputs, PassTokens(spec)), null);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            foreach (int i in valid) results[i] = new Begun(null, e);
        }
        return results;
    }

    private static GenerationOptions Options(JobStart job)
    {
        var (spec, inputs, _) = job;
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
            Image = inputs.Image,
            Video = inputs.Clip,
        };
        if (spec.Kind == JobKind.Extend) options = options with { VideoRole = VideoRole.Extend, ExtendFrames = spec.ExtendFrames!.Value };
        if (spec.Strength is { } strength) options = options with { Strength = strength };
        return options;
    }

    public void Step(IReadOnlyList<IEngineJob> jobs) => _pipeline.Step(jobs.Select(j => ((EngineJob)j).Work).ToList());

    /// <summary>
    /// The decoded clips (equal sizes decoded together); for an extension, the source clip (fitted to the size) without
    /// its last frames, then everything the model made.
    /// </summary>
    public IReadOnlyList<VideoFrames> Finish(IReadOnlyList<IEngineJob> jobs)
    {
        var parts = jobs.Select(j => ((EngineJob)j).Parts).ToArray();
        var results = _pipeline.Finish(parts.Select(p => p.Work).ToArray());
        foreach (var r in results) r.Latents?.Dispose();
        return parts.Select((p, i) =>
        {
            var video = results[i].Video ?? throw new InvalidOperationException("the pipeline returned no video");
            return p.Spec.Kind == JobKind.Extend ? ClipFrames.JoinExtension(p.Inputs.Clip!, video, p.Work.Options.ExtendFrames) : video;
        }).ToArray();
    }

    private sealed class EngineJob(GenerationJob work, JobSpec spec, JobInputs inputs, int passTokens) : IEngineJob
    {
        public GenerationJob Work => work;
        public (GenerationJob Work, JobSpec Spec, JobInputs Inputs) Parts => (work, spec, inputs);
        public bool IsFinished => work.IsFinished;
        public int PassTokens => passTokens;
        public void Dispose() => work.Dispose();
    }

    public long WorkingBytes => _backend.Memory.CurrentBytes + _backend.PooledBytes;

    public void Idle()
    {
        _pipeline.ReleaseCaches();
        _backend.TrimPool();
    }

    public void Dispose()
    {
        _pipeline.Dispose();
        _backend.Dispose();
    }
}
