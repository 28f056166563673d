namespace Sora.Cli.Serve;

/// <summary>Bounds on what one request may ask for; beyond them a request is refused with 400, 413 or 429.</summary>
public sealed record ServerLimits
{
    /// <summary>Largest request body (uploads included), bytes; one up to twice this is read and dropped before its 413, a larger one cut off.</summary>
    public long MaxBodyBytes { get; init; } = 64L << 20;
    /// <summary>Longest prompt or negative prompt, characters.</summary>
    public int MaxPromptChars { get; init; } = 4000;
    /// <summary>Most frames one video may have (an extension's total included).</summary>
    public int MaxFrames { get; init; } = 161;
    /// <summary>Most pixels in one frame (1280×720).</summary>
    public long MaxPixels { get; init; } = 1280L * 720;
    public int MaxSteps { get; init; } = 200;
    /// <summary>Most videos queued or in progress; one more is a 429.</summary>
    public int MaxQueue { get; init; } = 64;
    /// <summary>
    /// Most rows of one packed transformer pass (a job's tokens, twice with guidance): bounds the pass's memory; jobs
    /// beyond it wait for a job to leave. A job larger than this runs alone. Wan2.1-1.3B at 480p, guided: 65,520.
    /// </summary>
    public int MaxBatchTokens { get; init; } = 65536;
}

/// <summary>What <c>sora serve</c> was told.</summary>
public sealed record ServerOptions
{
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 picks a free port (see <see cref="VideoServer.Url"/>).</summary>
    public int Port { get; init; } = 8000;
    /// <summary>The folder of the videos and uploads, and of the SQLite store unless <see cref="Database"/> is set.</summary>
    public required string StoreDir { get; init; }
    /// <summary>A postgres:// URL: the jobs live there, shared with every server on it (the files in <see cref="StoreDir"/>, shared too).</summary>
    public string? Database { get; init; }
    /// <summary>With <see cref="Database"/>: a server silent this long is taken for dead and its jobs run elsewhere.</summary>
    public TimeSpan RunnerLease { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>When set, every request needs <c>Authorization: Bearer</c> this key.</summary>
    public string? ApiKey { get; init; }
    public ServerLimits Limits { get; init; } = new();
}
