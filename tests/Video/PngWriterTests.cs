using System.Buffers.Binary;
using System.IO.Compression;
using Sora.Native.Video;
using Xunit;

namespace Sora.Tests.Video;

public sealed class PngWriterTests : IDisposable
{
    private readonly string _dir = TestVideos.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void EveryFrameDecodesToTheExpectedPixels()
    {
        var video = TestVideos.Smooth(frames: 3, height: 13, width: 17);
        var folder = Path.Combine(_dir, "frames");
        PngWriter.WriteFolder(video, folder);

        var files = Directory.GetFiles(folder).Select(p => Path.GetFileName(p)).Order().ToArray();
        Assert.Equal(["frame_00000.png", "frame_00001.png", "frame_00002.png"], files);
        var expected = TestVideos.ExpectedBytes(video);
        int frameBytes = 13 * 17 * 3;
        for (int f = 0; f < 3; f++)
        {
            var (w, h, rgb) = MiniPng.Decode(File.ReadAllBytes(Path.Combine(folder, files[f])));
            Assert.Equal((17, 13), (w, h));
            Assert.Equal(expected.AsSpan(f * frameBytes, frameBytes).ToArray(), rgb);
        }
        Assert.Single(Directory.GetFileSystemEntries(_dir)); // no temporary left beside it
    }

    [FfmpegFact]
    public void FfmpegDecodesTheSamePixels()
    {
        var video = TestVideos.Smooth(frames: 5, height: 32, width: 48);
        var folder = Path.Combine(_dir, "out");
        PngWriter.WriteFolder(video, folder + "/");
        var pattern = Path.Combine(folder, "frame_%05d.png");
        Assert.Equal((5, 48, 32), Ffmpeg.Probe("-f", "image2", pattern));
        Assert.Equal(TestVideos.ExpectedBytes(video), Ffmpeg.DecodeRgb24("-f", "image2", "-i", pattern));
    }

    [Fact]
    public void CancelledWriteLeavesNothing()
    {
        var video = TestVideos.Smooth(frames: 3, height: 16, width: 16);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => PngWriter.WriteFolder(video, Path.Combine(_dir, "frames"), cts.Token));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void RefusesAFolderThatHoldsFiles()
    {
        var folder = Path.Combine(_dir, "frames");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "keep.txt"), "mine");
        var e = Assert.Throws<IOException>(() => PngWriter.WriteFolder(TestVideos.Smooth(1, 16, 16), folder));
        Assert.Contains("not empty", e.Message);
        Assert.Equal(["keep.txt"], Directory.GetFiles(folder).Select(p => Path.GetFileName(p)).ToArray());
        Assert.Single(Directory.GetFileSystemEntries(_dir));
    }
}

/// <summary>
/// A small PNG reader written for the tests from the PNG specification: checks chunk CRCs, reads IHDR,
/// inflates IDAT and undoes the five row filters. Only 8-bit RGB, non-interlaced.
/// </summary>
internal static class MiniPng
{
    public static (int Width, int Height, byte[] Rgb) Decode(byte[] file)
    {
        Assert.Equal(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }, file[..8]);
        int pos = 8, width = 0, height = 0;
        var idat = new MemoryStream();
        bool ended = false;
        while (!ended)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(pos));
            string type = System.Text.Encoding.ASCII.GetString(file, pos + 4, 4);
            var data = file.AsSpan(pos + 8, len);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(pos + 8 + len));
            Assert.Equal(BitwiseCrc(file.AsSpan(pos + 4, 4 + len)), crc);
            switch (type)
            {
                case "IHDR":
                    width = BinaryPrimitives.ReadInt32BigEndian(data);
                    height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                    Assert.Equal(new byte[] { 8, 2, 0, 0, 0 }, data[8..13].ToArray());
                    break;
                case "IDAT": idat.Write(data); break;
                case "IEND": ended = true; break;
            }
            pos += 12 + len;
        }
        Assert.Equal(file.Length, pos);

        idat.Position = 0;
        var raw = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionMode.Decompress)) z.CopyTo(raw);
        var filtered = raw.ToArray();
        int stride = width * 3;
        Assert.Equal(height * (stride + 1), filtered.Length);
        var rgb = new byte[height * stride];
        for (int y = 0; y < height; y++)
        {
            int type = filtered[y * (stride + 1)];
            for (int i = 0; i < stride; i++)
            {
                int x = filtered[y * (stride + 1) + 1 + i];
                int a = i >= 3 ? rgb[y * stride + i - 3] : 0;
                int b = y > 0 ? rgb[(y - 1) * stride + i] : 0;
                int c = i >= 3 && y > 0 ? rgb[(y - 1) * stride + i - 3] : 0;
                int pred = type switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => PaethPredictor(a, b, c),
                    _ => throw new Xunit.Sdk.XunitException($"bad filter type {type}"),
                };
                rgb[y * stride + i] = (byte)(x + pred);
            }
        }
        return (width, height, rgb);
    }

    private static int PaethPredictor(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    private static uint BitwiseCrc(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte d in data)
        {
            c ^= d;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (uint)-(int)(c & 1));
        }
        return ~c;
    }
}
