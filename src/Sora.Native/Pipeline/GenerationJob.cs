using System.Diagnostics;
using Sora.Native.Schedulers;
using Sora.Native.Wan;
using Sora.Runtime;

namespace Sora.Native.Pipeline;

/// <summary>
/// A request in progress (from <see cref="WanPipeline.Start(GenerationOptions, IProgress{StepProgress}?, CancellationToken)"/>,
/// or begun with others): its latents, its own scheduler at its own step, its projected prompts and its known frames.
/// <see cref="WanPipeline.Step"/> advances any set of jobs by one step in one packed transformer pass;
/// <see cref="WanPipeline.Finish(GenerationJob)"/> decodes a finished one (or several, equal sizes together). Dispose to free it.
/// </summary>
public sealed class GenerationJob : IDisposable
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly IProgress<StepProgress>? _progress;
    private readonly Tensor? _velocity;
    private readonly Tensor? _blended;
    private bool _disposed;

    internal GenerationJob(IBackend backend, GenerationOptions options, IFlowScheduler scheduler, WanTextContext context,
        Tensor latents, KnownFrames? known, long? seed, int[] patch, IProgress<StepProgress>? progress)
    {
        Options = options;
        Scheduler = scheduler;
        Context = context;
        Latents = latents;
        Known = known;
        Seed = seed;
        _progress = progress;
        Index = scheduler.FirstStep;
        int[] shape = latents.Shape;
        TokenFrames = shape[1] / patch[0];
        TokensPerFrame = shape[2] / patch[1] * (shape[3] / patch[2]);
        PatchT = patch[0];
        if (Guided) _velocity = backend.Allocate(DType.F32, shape);
        if (known is not null) _blended = backend.Allocate(DType.F32, shape);
    }

    public GenerationOptions Options { get; }
    /// <summary>The seed of the initial noise; null when the caller gave the latents.</summary>
    public long? Seed { get; }
    /// <summary>Steps this job runs (the kept tail of the schedule when editing).</summary>
    public int TotalSteps => Scheduler.Timesteps.Count - Scheduler.FirstStep;
    public int StepsDone => Index - Scheduler.FirstStep;
    public bool IsFinished => Index == Scheduler.Timesteps.Count;
    /// <summary>Prompt and negative prompt (two sequences of a packed pass), or the prompt alone.</summary>
    public bool Guided => Options.Guidance > 1.0;
    /// <summary>Post-patch tokens per sequence: what the job adds to a packed pass, per prompt.</summary>
    public int Tokens => TokenFrames * TokensPerFrame;

    internal IFlowScheduler Scheduler { get; }
    internal WanTextContext Context { get; }
    internal Tensor Latents { get; }
    internal KnownFrames? Known { get; }
    internal int Index { get; private set; }
    private int TokenFrames { get; }
    private int TokensPerFrame { get; }
    private int PatchT { get; }

    /// <summary>
    /// The transformer's input at this step and a timestep per token: the latents, or with known frames the blend
    /// (1−m)·known + m·latents with known tokens at timestep 0.
    /// </summary>
    internal PackedSequence Input(IBackend backend)
    {
        float t = Scheduler.Timesteps[Index];
        if (Known is null || _blended is null)
        {
            var all = new float[Tokens];
            Array.Fill(all, t);
            return new PackedSequence(Latents, all);
        }
        backend.Copy(Latents, _blended);
        Known.BlendInto(_blended);
        return new PackedSequence(_blended, Known.TokenTimesteps(t, TokenFrames, TokensPerFrame, PatchT));
    }

    /// <summary>Guidance, then this job's scheduler step in place on the unblended latents; reports progress.</summary>
    internal void Advance(IBackend backend, Tensor cond, Tensor? uncond)
    {
        float t = Scheduler.Timesteps[Index];
        if (uncond is not null && _velocity is not null) backend.CfgCombine(uncond, cond, (float)Options.Guidance, _velocity);
        Scheduler.Step(_velocity ?? cond, Latents);
        Index++;
        if (IsFinished) Known?.BlendInto(Latents);
        _progress?.Report(new StepProgress(StepsDone, TotalSteps, _clock.Elapsed));
        Options.OnStep?.Invoke(new StepInfo(StepsDone, TotalSteps, t, Scheduler.Sigmas[Index], _clock.Elapsed));
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _velocity?.Dispose();
        _blended?.Dispose();
        Known?.Dispose();
        Latents.Dispose();
        Context.Dispose();
        Scheduler.Dispose();
    }
}
