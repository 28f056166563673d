using Sora.Native.Video;

namespace Sora.Cli.Serve;

/// <summary>
/// The store folder on disk: <c>sora.db</c> (the jobs), <c>videos/{id}/</c> (a finished job's files: the video,
/// thumbnail.png, spritesheet.png and frames/ — lossless PNG frames a remix, edit or extension starts from) and
/// <c>uploads/{id}/</c> (the inputs a job was given). With the SQLite store a lock file keeps a second server off
/// the same folder; with a PostgreSQL store the folder is shared by every server on that database (a network
/// folder when they run on several machines), and a result appears in it by one rename, whole or not at all.
/// </summary>
public sealed class StoreFolder : IDisposable
{
    public const string DatabaseName = "sora.db";
    public const string Mp4Name = "video.mp4", GifName = "video.gif", ThumbnailName = "thumbnail.png", SpritesheetName = "spritesheet.png";
    public const string FramesName = "frames";
    private const int MaxSpritesheetFrames = 25;

    private readonly FileStream? _lock;

    /// <param name="exclusive">Lock the folder against a second server (the SQLite store); a shared folder is not locked.</param>
    public StoreFolder(string root, bool exclusive = true)
    {
        Root = Path.GetFullPath(root);
        Directory.CreateDirectory(Path.Combine(Root, "videos"));
        Directory.CreateDirectory(Path.Combine(Root, "uploads"));
        if (!exclusive) return;
        string lockPath = Path.Combine(Root, ".lock");
        try
        {
            _lock = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException($"{Root}: the store is in use by another sora serve (cannot lock {lockPath})", e);
        }
    }

    public string Root { get; }
    public string DatabasePath => Path.Combine(Root, DatabaseName);

    public string VideoDir(string id) => Path.Combine(Root, "videos", id);
    public string UploadDir(string id) => Path.Combine(Root, "uploads", id);

    /// <summary>A path inside the store for a spec's relative path.</summary>
    public string Resolve(string relative) => Path.Combine(Root, relative);

    public string Relative(string path) => Path.GetRelativePath(Root, path);

    /// <summary>The finished video: the .mp4 when ffmpeg made one, else the .gif; null when there is none.</summary>
    public (string Path, string ContentType)? VideoFile(string id)
    {
        string mp4 = Path.Combine(VideoDir(id), Mp4Name), gif = Path.Combine(VideoDir(id), GifName);
        if (File.Exists(mp4)) return (mp4, "video/mp4");
        if (File.Exists(gif)) return (gif, "image/gif");
        return null;
    }

    /// <summary>
    /// Writes a job's files into a fresh folder and moves it into place as one rename, so a reader sees all of a
    /// result or none of it. The video is H.264 .mp4 when ffmpeg is installed, else an animated .gif.
    /// </summary>
    public void WriteResult(string id, VideoFrames video, int fps, CancellationToken ct)
    {
        string temp = Path.Combine(Root, "videos", $".{id}.{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            bool mp4 = Mp4Writer.FindFfmpeg() is not null && video.Width % 2 == 0 && video.Height % 2 == 0;
            if (mp4) Mp4Writer.Write(video, Path.Combine(temp, Mp4Name), fps, ct);
            else GifWriter.Write(video, Path.Combine(temp, GifName), fps, ct);
            PngWriter.WriteFolder(video, Path.Combine(temp, FramesName), ct);
            WritePng(Path.Combine(temp, ThumbnailName), video.FrameBytes(0), video.Width, video.Height);
            var (sheet, sheetWidth, sheetHeight) = Spritesheet(video);
            WritePng(Path.Combine(temp, SpritesheetName), sheet, sheetWidth, sheetHeight);
            ct.ThrowIfCancellationRequested();
            DeleteTree(VideoDir(id));
            Directory.Move(temp, VideoDir(id));
        }
        catch
        {
            DeleteTree(temp);
            throw;
        }
    }

    /// <summary>Removes every file of the job (its result and its inputs).</summary>
    public void DeleteFiles(string id)
    {
        DeleteTree(VideoDir(id));
        DeleteUploads(id);
    }

    /// <summary>Removes the inputs a job was given (once it has finished, nothing reads them again).</summary>
    public void DeleteUploads(string id) => DeleteTree(UploadDir(id));

    private static void DeleteTree(string dir)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    private static void WritePng(string path, byte[] rgb, int width, int height)
    {
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        PngWriter.WriteImage(file, rgb, width, height);
    }

    /// <summary>Up to 25 frames, evenly spaced from first to last, in one image: left to right and top to bottom,
    /// ⌈√n⌉ frames a row (unused cells black).</summary>
    private static (byte[] Rgb, int Width, int Height) Spritesheet(VideoFrames video)
    {
        int count = Math.Min(video.Frames, MaxSpritesheetFrames);
        int columns = (int)Math.Ceiling(Math.Sqrt(count));
        int rows = (count + columns - 1) / columns;
        int width = columns * video.Width, height = rows * video.Height, stride = width * 3, frameStride = video.Width * 3;
        var sheet = new byte[(long)stride * height];
        for (int i = 0; i < count; i++)
        {
            int f = count == 1 ? 0 : (int)((long)i * (video.Frames - 1) / (count - 1));
            var frame = video.FrameBytes(f);
            int x0 = i % columns * video.Width, y0 = i / columns * video.Height;
            for (int y = 0; y < video.Height; y++)
                frame.AsSpan(y * frameStride, frameStride).CopyTo(sheet.AsSpan((y0 + y) * stride + x0 * 3));
        }
        return (sheet, width, height);
    }

    public void Dispose() => _lock?.Dispose();
}
