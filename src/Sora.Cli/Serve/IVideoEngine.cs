using Sora.Native.Pipeline;
using Sora.Native.Video;

namespace Sora.Cli.Serve;

/// <summary>The decoded inputs of a job: the image of image-to-video, the clip of a remix, edit or extension.</summary>
public sealed record JobInputs(VideoFrames? Image, VideoFrames? Clip);

/// <summary>A job to begin: what it asks for, its decoded inputs, and where its steps are reported.</summary>
public sealed record JobStart(JobSpec Spec, JobInputs Inputs, IProgress<StepProgress> Progress);

/// <summary>What beginning one job gave: the job, or why it could not begin.</summary>
public sealed record Begun(IEngineJob? Job, Exception? Error);

/// <summary>A job the engine is working on: stepped with others by <see cref="IVideoEngine.Step"/>. Dispose to free it.</summary>
public interface IEngineJob : IDisposable
{
    bool IsFinished { get; }
    /// <summary>Rows it adds to a packed pass (its tokens, twice with guidance): what the batch budget counts.</summary>
    int PassTokens { get; }
}

/// <summary>
/// What the job runner drives: one loaded model on one device, entered from the runner's thread only. Jobs are
/// begun together (the jobs that join at the same pass, their prompts encoded in one pass), stepped together (every
/// job in flight, each at its own step, in one packed transformer pass per step: continuous batching), and finished
/// together (the jobs that finish at the same pass, clips of one size decoded in one pass).
/// </summary>
public interface IVideoEngine : IDisposable
{
    /// <summary>The model's name as the API reports it.</summary>
    string ModelId { get; }
    ClipGeometry Geometry { get; }
    int DefaultSteps { get; }
    double DefaultGuidance { get; }
    /// <summary>Known frames an extension starts from when the clip has them (4k+1).</summary>
    int DefaultExtendFrames { get; }
    /// <summary>Share of the schedule a remix or edit runs again when the request does not say.</summary>
    double DefaultStrength { get; }

    /// <summary>The size made from an image or clip of this size when none is asked for: its aspect ratio at the model's pixel count.</summary>
    (int Width, int Height) SizeFor(int sourceWidth, int sourceHeight);

    /// <summary>Rows a job of this spec would add to a packed pass, known before it begins.</summary>
    int PassTokens(JobSpec spec);

    /// <summary>
    /// Begins jobs (prompts and inputs encoded, noise drawn), each reporting to its progress after each of its steps.
    /// One result per job, in order: a request that cannot run gives its error without keeping the others from beginning.
    /// </summary>
    IReadOnlyList<Begun> Begin(IReadOnlyList<JobStart> jobs);

    /// <summary>One denoising step of every job given, in one packed pass.</summary>
    void Step(IReadOnlyList<IEngineJob> jobs);

    /// <summary>The videos of finished jobs, in order.</summary>
    IReadOnlyList<VideoFrames> Finish(IReadOnlyList<IEngineJob> jobs);

    /// <summary>Bytes the engine holds in its device's buffers: those in use (the model's among them) and freed ones kept for reuse.</summary>
    long WorkingBytes { get; }

    /// <summary>
    /// Nothing is in flight: gives back what was kept for the work (the pipeline's caches, the device's buffer pool),
    /// so an idle server holds what it held before a burst of requests.
    /// </summary>
    void Idle();
}
