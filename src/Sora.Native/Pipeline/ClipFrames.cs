using Sora.Native.Video;

namespace Sora.Native.Pipeline;

/// <summary>Joining clips (<c>--join</c> writes a source clip and its continuation as one).</summary>
public static class ClipFrames
{
    /// <summary>The frames of <paramref name="first"/> then those of <paramref name="second"/> (same size).</summary>
    public static VideoFrames Concat(this VideoFrames first, VideoFrames second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        if (first.Height != second.Height || first.Width != second.Width)
            throw new ArgumentException($"clips of {first.Width}x{first.Height} and {second.Width}x{second.Height} cannot be joined", nameof(second));
        return new VideoFrames(first.Frames + second.Frames, first.Height, first.Width, [.. first.Rgb, .. second.Rgb]);
    }
}
