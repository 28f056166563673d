using System.Buffers.Binary;
using Sora.Native.Video;
using Xunit;

namespace Sora.Tests.Video;

public sealed class GifWriterTests : IDisposable
{
    private readonly string _dir = TestVideos.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void StructureHasEveryFrameLoopsForeverAndKeepsTime()
    {
        var video = TestVideos.FewColors(frames: 17, height: 24, width: 40, colors: 50, seed: 1);
        var path = Path.Combine(_dir, "v.gif");
        GifWriter.Write(video, path, fps: 16);

        var gif = MiniGif.Read(File.ReadAllBytes(path));
        Assert.Equal((40, 24), (gif.Width, gif.Height));
        Assert.Equal(17, gif.Frames.Count);
        Assert.All(gif.Frames, fr => Assert.Equal((0, 0, 40, 24), fr.Rect));
        Assert.Equal(0, gif.LoopCount);
        // 16 fps is 6.25 centiseconds a frame: 16 frames last exactly one second and no delay strays by more than one.
        Assert.Equal(100, gif.Frames.Take(16).Sum(fr => fr.DelayCs));
        Assert.All(gif.Frames, fr => Assert.InRange(fr.DelayCs, 6, 7));
        Assert.Single(Directory.GetFileSystemEntries(_dir));
    }

    [FfmpegFact]
    public void VideoWithAFewColoursRoundTripsExactly()
    {
        var video = TestVideos.FewColors(frames: 6, height: 24, width: 40, colors: 200, seed: 2);
        var path = Path.Combine(_dir, "v.gif");
        GifWriter.Write(video, path);
        Assert.Equal((6, 40, 24), Ffmpeg.Probe(path));
        Assert.Equal(TestVideos.ExpectedBytes(video), Ffmpeg.DecodeRgb24("-i", path));
    }

    [FfmpegFact]
    public void TinyAndOddSizesRoundTripExactly()
    {
        foreach (var (h, w, colors) in new[] { (1, 1, 1), (1, 301, 3), (7, 5, 2), (13, 17, 40) })
        {
            var video = TestVideos.FewColors(frames: 2, height: h, width: w, colors: colors, seed: h * 1000 + w);
            var path = Path.Combine(_dir, $"{h}x{w}.gif");
            GifWriter.Write(video, path);
            Assert.Equal(TestVideos.ExpectedBytes(video), Ffmpeg.DecodeRgb24("-i", path));
        }
    }

    [FfmpegFact]
    public void NoiseThatFillsTheCodeTableManyTimesRoundTripsExactly()
    {
        // 256 colours of noise: the 4096-entry LZW table fills every few thousand pixels, so clear codes and
        // every code width from 9 to 12 bits are exercised.
        var video = TestVideos.FewColors(frames: 3, height: 96, width: 128, colors: 256, seed: 3);
        var path = Path.Combine(_dir, "noise.gif");
        GifWriter.Write(video, path);
        Assert.Equal(TestVideos.ExpectedBytes(video), Ffmpeg.DecodeRgb24("-i", path));
    }

    [FfmpegFact]
    public void ManyColoursAreApproximatedClosely()
    {
        var video = TestVideos.Smooth(frames: 4, height: 48, width: 64);
        var path = Path.Combine(_dir, "smooth.gif");
        GifWriter.Write(video, path);
        var decoded = Ffmpeg.DecodeRgb24("-i", path);
        var expected = TestVideos.ExpectedBytes(video);
        Assert.Equal(expected.Length, decoded.Length);
        double meanAbs = expected.Zip(decoded, (a, b) => (double)Math.Abs(a - b)).Average();
        // A 3-D gradient of ~3000 colours cut into 256 boxes is off by several levels on average (no dithering);
        // mapping to the wrong entry or a broken palette costs tens.
        Assert.InRange(meanAbs, 0, 7.0);
    }

    [Fact]
    public void CancelledWriteLeavesNoFile()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => GifWriter.Write(TestVideos.Smooth(2, 16, 16), Path.Combine(_dir, "v.gif"), ct: cts.Token));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Theory]
    [InlineData(16, new[] { 6, 6, 7, 6 })]
    [InlineData(25, new[] { 4, 4, 4, 4 })]
    [InlineData(30, new[] { 3, 4, 3, 3 })]
    public void FrameDelaysAddUpToTheFrameRate(int fps, int[] expected)
    {
        Assert.Equal(expected, Enumerable.Range(0, 4).Select(f => GifWriter.FrameDelay(f, fps)));
    }
}

/// <summary>A GIF block walker for the tests (no LZW decoding): screen size, loop count, each frame's rectangle and delay.</summary>
internal sealed record MiniGif(int Width, int Height, int? LoopCount, List<((int, int, int, int) Rect, int DelayCs)> Frames)
{
    public static MiniGif Read(byte[] b)
    {
        Assert.Equal("GIF89a"u8.ToArray(), b[..6]);
        int width = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(6)), height = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(8));
        int pos = 13;
        if ((b[10] & 0x80) != 0) pos += 3 << ((b[10] & 7) + 1);
        int? loop = null;
        int delay = 0;
        var frames = new List<((int, int, int, int), int)>();
        while (true)
        {
            byte kind = b[pos++];
            if (kind == 0x3B) break;
            if (kind == 0x21)
            {
                byte label = b[pos++];
                var blocks = SubBlocks(b, ref pos);
                if (label == 0xF9) delay = BinaryPrimitives.ReadUInt16LittleEndian(blocks[0].AsSpan(1));
                if (label == 0xFF && System.Text.Encoding.ASCII.GetString(blocks[0]) == "NETSCAPE2.0")
                    loop = BinaryPrimitives.ReadUInt16LittleEndian(blocks[1].AsSpan(1));
                continue;
            }
            Assert.Equal(0x2C, kind);
            var rect = (BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(pos)), BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(pos + 2)),
                BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(pos + 4)), BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(pos + 6)));
            byte packed = b[pos + 8];
            pos += 9;
            if ((packed & 0x80) != 0) pos += 3 << ((packed & 7) + 1);
            pos++; // LZW minimum code size
            SubBlocks(b, ref pos);
            frames.Add((rect, delay));
        }
        Assert.Equal(b.Length, pos);
        return new MiniGif(width, height, loop, frames);
    }

    private static List<byte[]> SubBlocks(byte[] b, ref int pos)
    {
        var list = new List<byte[]>();
        while (b[pos] != 0)
        {
            list.Add(b[(pos + 1)..(pos + 1 + b[pos])]);
            pos += 1 + b[pos];
        }
        pos++;
        return list;
    }
}
