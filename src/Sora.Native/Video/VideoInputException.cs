namespace Sora.Native.Video;

/// <summary>
/// The one exception an unreadable image or clip produces: a missing, truncated, corrupt or oversized file, an empty
/// folder, frames of different sizes, an unsupported format. The message starts with the path at fault.
/// </summary>
public sealed class VideoInputException : IOException
{
    public VideoInputException(string path, string problem, Exception? inner = null)
        : base($"{path}: {problem}", inner)
    {
        Path = path;
    }

    public string Path { get; }
}
