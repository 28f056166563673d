using Sora.Native.Video;

namespace Sora.Cli;

public enum OutputKind
{
    Mp4,
    Gif,
    Y4m,
    PngFolder,
    Safetensors,
}

/// <summary>
/// What --out names, decided from its spelling before any work starts:
/// <c>.mp4</c> (needs ffmpeg), <c>.gif</c>, <c>.y4m</c>, a folder of PNG frames (a path ending in '/' or with no
/// extension, e.g. <c>frames/</c>), or <c>.safetensors</c> for <c>--output-type latent</c>.
/// </summary>
public sealed record OutputTarget(string Path, OutputKind Kind)
{
    public const string DefaultVideo = "output.gif";
    public const string DefaultLatents = "latents.safetensors";

    public static OutputTarget Parse(string path, bool latent)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new UsageException("--out: empty path");
        bool folderSpelling = path.EndsWith('/') || path.EndsWith(System.IO.Path.DirectorySeparatorChar);
        string ext = folderSpelling ? "" : System.IO.Path.GetExtension(path).ToLowerInvariant();
        if (latent)
        {
            return ext == ".safetensors" ? new(path, OutputKind.Safetensors)
                : throw new UsageException($"--out {path}: --output-type latent writes a .safetensors file");
        }
        return ext switch
        {
            ".mp4" => new(path, OutputKind.Mp4),
            ".gif" => new(path, OutputKind.Gif),
            ".y4m" => new(path, OutputKind.Y4m),
            "" => new(path, OutputKind.PngFolder),
            ".png" => throw new UsageException($"--out {path}: PNG frames go into a folder: give a folder such as frames/"),
            ".safetensors" => throw new UsageException($"--out {path}: a .safetensors output needs --output-type latent"),
            _ => throw new UsageException($"--out {path}: unknown video format '{ext}' (use .mp4, .gif, .y4m, or a folder/ for PNG frames)"),
        };
    }

    /// <summary>Fails now, before any generation, if the output cannot be written (or .mp4 has no ffmpeg).</summary>
    public void EnsureWritable()
    {
        if (Kind == OutputKind.Mp4 && Mp4Writer.FindFfmpeg() is null)
            throw new UsageException($"--out {Path}: writing .mp4 needs ffmpeg on PATH; install ffmpeg or write .gif, .y4m or a folder of PNG frames (e.g. --out frames/)");
        AtomicOutput.EnsureWritable(Path, isFolder: Kind == OutputKind.PngFolder);
    }

    public string Describe() => Kind switch
    {
        OutputKind.PngFolder => $"{Path} (PNG frames)",
        _ => Path,
    };

    public void WriteVideo(VideoFrames video, int fps, CancellationToken ct)
    {
        switch (Kind)
        {
            case OutputKind.Mp4: Mp4Writer.Write(video, Path, fps, ct); break;
            case OutputKind.Gif: GifWriter.Write(video, Path, fps, ct); break;
            case OutputKind.Y4m: Y4mWriter.Write(video, Path, fps, ct); break;
            case OutputKind.PngFolder: PngWriter.WriteFolder(video, Path, ct); break;
            default: throw new InvalidOperationException($"{Kind} is not a video output");
        }
    }
}
