using FFMpegCore;
using FFMpegCore.Pipes;
using Sora.Native.Video;

namespace Sora.Cli;

/// <summary>
/// H.264 .mp4 through the ffmpeg program (FFMpegCore): raw RGB frames are piped to libx264, yuv420p so every player
/// accepts it. Lives in the CLI so the libraries need no ffmpeg.
/// </summary>
public static class Mp4Writer
{
    /// <summary>The ffmpeg executable on PATH, or null.</summary>
    public static string? FindFfmpeg() => FfmpegReader.FindFfmpeg();

    public static void Write(VideoFrames video, string path, int fps, CancellationToken ct)
    {
        if (FindFfmpeg() is null) throw new IOException($"{path}: writing .mp4 needs ffmpeg on PATH; write .gif, .y4m or a folder of PNG frames instead");
        if (video.Width % 2 != 0 || video.Height % 2 != 0)
            throw new ArgumentException($"{path}: yuv420p H.264 needs even sizes, got {video.Width}x{video.Height}");
        AtomicOutput.WriteFileByPath(path, temp =>
        {
            var source = new RawVideoPipeSource(Frames(video, ct)) { FrameRate = fps };
            FFMpegArguments
                .FromPipeInput(source)
                .OutputToFile(temp, overwrite: true, o => o
                    .ForceFormat("mp4")
                    .WithVideoCodec("libx264")
                    .WithPixelFormat("yuv420p")
                    .WithConstantRateFactor(18) // visually near-lossless; x264's default 23 smears fine generated texture
                    .WithFastStart()            // index first, so browsers play it while it downloads
                    .WithFrameRate(fps))
                .CancellableThrough(ct)
                .ProcessSynchronously();
            ct.ThrowIfCancellationRequested();
        });
    }

    private static IEnumerable<IVideoFrame> Frames(VideoFrames video, CancellationToken ct)
    {
        for (int f = 0; f < video.Frames; f++)
        {
            ct.ThrowIfCancellationRequested();
            yield return new RgbFrame(video.Width, video.Height, video.FrameBytes(f));
        }
    }

    private sealed class RgbFrame(int width, int height, byte[] rgb) : IVideoFrame
    {
        public int Width => width;
        public int Height => height;
        public string PixelFormat => "rgb24";
        public void Serialize(Stream pipe) => pipe.Write(rgb);
        public Task SerializeAsync(Stream pipe, CancellationToken token) => pipe.WriteAsync(rgb, token).AsTask();
    }
}
