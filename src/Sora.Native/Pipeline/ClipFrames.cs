using Sora.Native.Video;

namespace Sora.Native.Pipeline;

/// <summary>A source clip and its continuation as one clip (<c>sora generate --join</c>, the server's extensions).</summary>
public static class ClipFrames
{
    /// <summary>
    /// The source (fitted to the continuation's size, as the pipeline fitted it) without its last
    /// <paramref name="extendFrames"/> frames — the continuation starts by re-making them — then the continuation.
    /// </summary>
    public static VideoFrames JoinExtension(VideoFrames source, VideoFrames continuation, int extendFrames)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(continuation);
        var fitted = FrameFit.ResizeCenterCrop(source, continuation.Width, continuation.Height);
        return fitted.Slice(0, fitted.Frames - extendFrames).Concat(continuation);
    }
}
