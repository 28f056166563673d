using Sora.Native.Pipeline;
using Sora.Native.Video;

namespace Sora.Cli.Serve;

/// <summary>The decoded inputs of a job: the image of image-to-video, the clip of a remix, edit or extension.</summary>
public sealed record JobInputs(VideoFrames? Image, VideoFrames? Clip);

/// <summary>
/// What the job runner drives: one loaded model on one device. <see cref="Generate"/> is called from the runner's
/// thread only, one job at a time; a packing scheduler would replace it with a per-step call over many jobs.
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

    /// <summary>Runs one job; <paramref name="progress"/> after every denoising step; throws <see cref="OperationCanceledException"/> when cancelled.</summary>
    VideoFrames Generate(JobSpec spec, JobInputs inputs, IProgress<StepProgress> progress, CancellationToken ct);
}
