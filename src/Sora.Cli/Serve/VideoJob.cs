using System.Text.Json.Serialization;

namespace Sora.Cli.Serve;

/// <summary>The lifecycle states of OpenAI's Video object, spelled as the API spells them.</summary>
public static class JobStatus
{
    public const string Queued = "queued";
    public const string InProgress = "in_progress";
    public const string Completed = "completed";
    public const string Failed = "failed";
}

/// <summary>Which endpoint made the job, and so which conditioning it runs with.</summary>
public enum JobKind
{
    /// <summary>POST /v1/videos: text to video, or image to video with <see cref="JobSpec.Image"/>.</summary>
    Create,
    /// <summary>POST /v1/videos/{id}/remix: a new prompt over a finished video (video to video).</summary>
    Remix,
    /// <summary>POST /v1/videos/edits: a prompt over an uploaded clip or a finished video.</summary>
    Edit,
    /// <summary>POST /v1/videos/extensions: continue a clip from its last <see cref="JobSpec.ExtendFrames"/> frames.</summary>
    Extend,
}

/// <summary>
/// Everything a job needs to run, fixed when it is accepted (the seed included, so a job picked up again after a
/// restart makes the same video). Input paths are relative to the store folder and belong to the job.
/// </summary>
public sealed record JobSpec
{
    public JobKind Kind { get; init; }
    public string Prompt { get; init; } = "";
    public string? NegativePrompt { get; init; }
    public int Frames { get; init; }
    public int Width { get; init; }
    public int Height { get; init; }
    public int Steps { get; init; }
    public double Guidance { get; init; }
    public long Seed { get; init; }
    /// <summary>The image of image-to-video (input_reference), a file in the job's upload folder.</summary>
    public string? Image { get; init; }
    /// <summary>The clip a remix, edit or extension starts from, a file or frame folder in the job's upload folder.</summary>
    public string? Clip { get; init; }
    /// <summary>Frames of <see cref="Clip"/> (an extension's result starts with them).</summary>
    public int? ClipFrames { get; init; }
    /// <summary>Remix and edit: the share of the schedule run again, (0, 1]; null: the pipeline's default.</summary>
    public double? Strength { get; init; }
    /// <summary>
    /// Extension: how many of the clip's last frames start the new part (4k+1). The model makes <see cref="Frames"/>
    /// frames whose first <see cref="ExtendFrames"/> re-create those; the result is the clip without them, then the new part.
    /// </summary>
    public int? ExtendFrames { get; init; }

    /// <summary>Frames of the finished video: for an extension, the clip's and the new ones.</summary>
    [JsonIgnore]
    public int TotalFrames => Kind == JobKind.Extend ? ClipFrames!.Value - ExtendFrames!.Value + Frames : Frames;
}

/// <summary>Why a job failed: the <c>error</c> of the Video object.</summary>
public sealed record JobError(string Code, string Message);

/// <summary>One row of the store: a job and what the API reports about it.</summary>
public sealed record VideoJob
{
    public required string Id { get; init; }
    public required string Status { get; init; }
    /// <summary>0–100.</summary>
    public int Progress { get; init; }
    /// <summary>Unix seconds.</summary>
    public long CreatedAt { get; init; }
    public long? CompletedAt { get; init; }
    public required string Model { get; init; }
    public string? Prompt { get; init; }
    /// <summary>The clip's length as reported: (frames − 1) / fps, e.g. "4".</summary>
    public required string Seconds { get; init; }
    /// <summary>"WxH" of the frames made.</summary>
    public required string Size { get; init; }
    public string? RemixedFromVideoId { get; init; }
    public JobError? Error { get; init; }
    /// <summary>How many times a runner has claimed the job (more than 1 only when a server stopped mid-job).</summary>
    public int Attempts { get; init; }
    public required JobSpec Spec { get; init; }
}
