using Sora.Cli;
using Xunit;

namespace Sora.Tests.Video;

public sealed class Mp4WriterTests : IDisposable
{
    private readonly string _dir = TestVideos.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [FfmpegFact]
    public void H264FileHasEveryFrameAndLooksLikeTheSource()
    {
        var video = TestVideos.Smooth(frames: 9, height: 32, width: 48);
        var path = Path.Combine(_dir, "v.mp4");
        Mp4Writer.Write(video, path, fps: 16, CancellationToken.None);
        Assert.Equal((9, 48, 32), Ffmpeg.Probe(path));
        var decoded = Ffmpeg.DecodeRgb24("-i", path, "-sws_flags", Ffmpeg.AccurateScaling);
        var expected = TestVideos.ExpectedBytes(video);
        Assert.Equal(expected.Length, decoded.Length);
        // Lossy H.264 at its default quality on a tiny clip: a few levels off on average; garbage would be tens.
        double meanAbs = expected.Zip(decoded, (a, b) => (double)Math.Abs(a - b)).Average();
        Assert.InRange(meanAbs, 0, 6.0);
        Assert.Single(Directory.GetFileSystemEntries(_dir));
    }

    [FfmpegFact]
    public void CancelledWriteLeavesNoFile()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => Mp4Writer.Write(TestVideos.Smooth(3, 16, 16), Path.Combine(_dir, "v.mp4"), 16, cts.Token));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }
}
