using System.Text;
using Sora.Native.Video;
using Xunit;

namespace Sora.Tests.Video;

public sealed class Y4mWriterTests : IDisposable
{
    private readonly string _dir = TestVideos.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void HeaderFramesAndPlanesFollowTheFormat()
    {
        var video = TestVideos.Smooth(frames: 5, height: 32, width: 48);
        var path = Path.Combine(_dir, "v.y4m");
        Y4mWriter.Write(video, path, fps: 16);

        var y4m = MiniY4m.Read(File.ReadAllBytes(path));
        Assert.Equal(new[] { "W48", "H32", "F16:1", "Ip", "A1:1", "C420jpeg" }, y4m.Header);
        Assert.Equal(5, y4m.Frames.Count);

        // Independent BT.601 limited-range formulas: Y = 16 + 219·(0.299R + 0.587G + 0.114B), C = 128 + 224·(scaled difference).
        int w = 48, h = 32;
        for (int f = 0; f < 5; f++)
        {
            var (yPlane, uPlane, vPlane) = y4m.Frames[f];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    var (r, g, b) = Pixel(video, f, y, x);
                    double luma = 16 + 219 * (0.299 * r + 0.587 * g + 0.114 * b);
                    Assert.InRange(yPlane[y * w + x] - luma, -0.51, 0.51);
                }
            for (int cy = 0; cy < h / 2; cy++)
                for (int cx = 0; cx < w / 2; cx++)
                {
                    double r = 0, g = 0, b = 0;
                    foreach (var (dy, dx) in new[] { (0, 0), (0, 1), (1, 0), (1, 1) })
                    {
                        var p = Pixel(video, f, 2 * cy + dy, 2 * cx + dx);
                        r += p.R / 4; g += p.G / 4; b += p.B / 4;
                    }
                    double yy = 0.299 * r + 0.587 * g + 0.114 * b;
                    double cb = 128 + 224 * (b - yy) / 1.772, cr = 128 + 224 * (r - yy) / 1.402;
                    Assert.InRange(uPlane[cy * (w / 2) + cx] - cb, -0.51, 0.51);
                    Assert.InRange(vPlane[cy * (w / 2) + cx] - cr, -0.51, 0.51);
                }
        }
    }

    [FfmpegFact]
    public void FfmpegReadsTheFramesBackCloseToTheSource()
    {
        var video = TestVideos.Smooth(frames: 5, height: 32, width: 48);
        var path = Path.Combine(_dir, "v.y4m");
        Y4mWriter.Write(video, path);
        Assert.Equal((5, 48, 32), Ffmpeg.Probe(path));
        var decoded = Ffmpeg.DecodeRgb24("-i", path, "-sws_flags", Ffmpeg.AccurateScaling);
        var expected = TestVideos.ExpectedBytes(video);
        Assert.Equal(expected.Length, decoded.Length);
        // 4:2:0 chroma and 8-bit YUV round trips lose a little; a wrong matrix or range costs tens of levels.
        double meanAbs = expected.Zip(decoded, (a, b) => (double)Math.Abs(a - b)).Average();
        Assert.InRange(meanAbs, 0, 3.0);
    }

    [FfmpegFact]
    public void FlatColoursComeBackWithinQuantisation()
    {
        // One flat colour per frame: no chroma subsampling loss, so only 8-bit rounding of Y, Cb, Cr remains;
        // a wrong matrix (BT.709) or range (full swing) would miss by several levels.
        float[][] colors = [[0.2f, 0.5f, 0.8f], [1f, 0f, 0f], [0f, 1f, 0f], [0f, 0f, 1f], [0.9f, 0.9f, 0.1f], [0f, 0f, 0f], [1f, 1f, 1f]];
        int h = 16, w = 16;
        var rgb = new float[colors.Length * h * w * 3];
        for (int p = 0; p < rgb.Length / 3; p++) colors[p / (h * w)].CopyTo(rgb, 3 * p);
        var video = new VideoFrames(colors.Length, h, w, rgb);
        var path = Path.Combine(_dir, "flat.y4m");
        Y4mWriter.Write(video, path);
        var decoded = Ffmpeg.DecodeRgb24("-i", path, "-sws_flags", Ffmpeg.AccurateScaling);
        var expected = TestVideos.ExpectedBytes(video);
        Assert.Equal(expected.Length, decoded.Length);
        Assert.InRange(expected.Zip(decoded, (a, b) => Math.Abs(a - b)).Max(), 0, 2);
    }

    [Fact]
    public void CancelledWriteLeavesNoFile()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => Y4mWriter.Write(TestVideos.Smooth(2, 16, 16), Path.Combine(_dir, "v.y4m"), ct: cts.Token));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    private static (double R, double G, double B) Pixel(VideoFrames v, int f, int y, int x)
    {
        int p = ((f * v.Height + y) * v.Width + x) * 3;
        return (Math.Clamp(v.Rgb[p], 0, 1), Math.Clamp(v.Rgb[p + 1], 0, 1), Math.Clamp(v.Rgb[p + 2], 0, 1));
    }
}

/// <summary>A YUV4MPEG2 reader for the tests: header tokens, and each frame's Y, U, V planes (4:2:0 only).</summary>
internal sealed record MiniY4m(string[] Header, List<(byte[] Y, byte[] U, byte[] V)> Frames)
{
    public static MiniY4m Read(byte[] file)
    {
        int eol = Array.IndexOf(file, (byte)'\n');
        var tokens = Encoding.ASCII.GetString(file, 0, eol).Split(' ');
        Assert.Equal("YUV4MPEG2", tokens[0]);
        int w = int.Parse(tokens.Single(t => t[0] == 'W')[1..]), h = int.Parse(tokens.Single(t => t[0] == 'H')[1..]);
        int cw = (w + 1) / 2, ch = (h + 1) / 2;
        var frames = new List<(byte[], byte[], byte[])>();
        int pos = eol + 1;
        while (pos < file.Length)
        {
            int end = Array.IndexOf(file, (byte)'\n', pos);
            Assert.StartsWith("FRAME", Encoding.ASCII.GetString(file, pos, end - pos));
            pos = end + 1;
            Assert.True(pos + w * h + 2 * cw * ch <= file.Length, "truncated frame");
            frames.Add((file[pos..(pos + w * h)], file[(pos + w * h)..(pos + w * h + cw * ch)], file[(pos + w * h + cw * ch)..(pos + w * h + 2 * cw * ch)]));
            pos += w * h + 2 * cw * ch;
        }
        return new MiniY4m(tokens[1..], frames);
    }
}
