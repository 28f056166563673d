using System.Text;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using Sora.Native.Video;
using Xunit;

namespace Sora.Tests.Video;

public sealed class VideoInputTests : IDisposable
{
    private readonly string _dir = TestVideos.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    /// <summary>Random 8-bit pixels (never flat), interleaved RGB.</summary>
    private static byte[] RandomRgb(int seed, int frames, int height, int width)
    {
        var b = new byte[frames * height * width * 3];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static void WritePng(string path, byte[] rgb, int width, int height)
    {
        using var file = File.Create(path);
        PngWriter.WriteImage(file, rgb, width, height);
    }

    /// <summary>Every value must be exactly b/255 of the expected 8-bit sample (what diffusers' VideoProcessor computes).</summary>
    private static void AssertBytes(byte[] expected, VideoFrames actual)
    {
        Assert.Equal(expected.Length, actual.Rgb.Length);
        for (int i = 0; i < expected.Length; i++)
            if (actual.Rgb[i] != expected[i] / 255f) Assert.Fail($"value {i}: {actual.Rgb[i]} != {expected[i]}/255");
    }

    [Fact]
    public void PngFromOurWriterReadsBackExactly()
    {
        var rgb = RandomRgb(1, 1, 13, 17);
        WritePng(P("a.png"), rgb, 17, 13);
        var v = VideoInput.ReadImage(P("a.png"));
        Assert.Equal((1, 13, 17), (v.Frames, v.Height, v.Width));
        AssertBytes(rgb, v);
        AssertBytes(rgb, VideoInput.ReadClip(P("a.png")));
    }

    [Fact]
    public void PngFromImageSharpWithAlphaAndGreyReadsBackAsRgb()
    {
        var rng = new Random(2);
        using (var rgba = new Image<Rgba32>(9, 7))
        {
            var expected = new byte[7 * 9 * 3];
            for (int y = 0; y < 7; y++)
                for (int x = 0; x < 9; x++)
                {
                    var px = new Rgba32((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256));
                    rgba[x, y] = px;
                    // Alpha is dropped, not composited, as PIL's convert("RGB") does.
                    expected[3 * (y * 9 + x)] = px.R; expected[3 * (y * 9 + x) + 1] = px.G; expected[3 * (y * 9 + x) + 2] = px.B;
                }
            rgba.SaveAsPng(P("rgba.png"));
            AssertBytes(expected, VideoInput.ReadImage(P("rgba.png")));
        }
        using (var grey = new Image<L8>(5, 4))
        {
            var expected = new byte[4 * 5 * 3];
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 5; x++)
                {
                    byte g = (byte)rng.Next(256);
                    grey[x, y] = new L8(g);
                    expected[3 * (y * 5 + x)] = expected[3 * (y * 5 + x) + 1] = expected[3 * (y * 5 + x) + 2] = g;
                }
            grey.Save(P("grey.png"), new PngEncoder { ColorType = PngColorType.Grayscale });
            AssertBytes(expected, VideoInput.ReadImage(P("grey.png")));
        }
    }

    [Fact]
    public void JpegReadsBackWithinCompressionLoss()
    {
        // A smooth image at quality 100: JPEG's loss is a few levels; a wrong colour conversion costs tens.
        var video = TestVideos.Smooth(1, 32, 48);
        var bytes = TestVideos.ExpectedBytes(video);
        using (var image = Image.LoadPixelData<Rgb24>(bytes, 48, 32))
            image.Save(P("a.jpg"), new JpegEncoder { Quality = 100 });
        var v = VideoInput.ReadImage(P("a.jpg"));
        Assert.Equal((1, 32, 48), (v.Frames, v.Height, v.Width));
        double meanAbs = bytes.Select((b, i) => Math.Abs(b - v.Rgb[i] * 255.0)).Average();
        Assert.InRange(meanAbs, 0, 2.0);
        File.Copy(P("a.jpg"), P("b.JPEG"));
        Assert.Equal(v.Rgb, VideoInput.ReadClip(P("b.JPEG")).Rgb);
    }

    [Fact]
    public void ExifOrientationIsApplied()
    {
        // Stored 4 wide and 2 high with orientation 6 (rotate 90° clockwise to display): read as 2 wide, 4 high.
        using (var image = new Image<Rgb24>(4, 2, new Rgb24(200, 200, 200)))
        {
            image[0, 0] = new Rgb24(255, 0, 0); // stored top-left: displayed top-right after the rotation
            image.Metadata.ExifProfile = new SixLabors.ImageSharp.Metadata.Profiles.Exif.ExifProfile();
            image.Metadata.ExifProfile.SetValue(SixLabors.ImageSharp.Metadata.Profiles.Exif.ExifTag.Orientation, (ushort)6);
            image.SaveAsPng(P("rot.png"));
        }
        var v = VideoInput.ReadImage(P("rot.png"));
        Assert.Equal((4, 2), (v.Height, v.Width));
        Assert.Equal(1f, v.Rgb[3 * 1]);      // R of (x 1, y 0)
        Assert.Equal(200 / 255f, v.Rgb[0]);  // (x 0, y 0) is background
    }

    [Fact]
    public void FolderFramesComeInFileNameOrder()
    {
        var folder = P("clip");
        Directory.CreateDirectory(folder);
        var rgb = RandomRgb(3, 4, 6, 10);
        int n = 6 * 10 * 3;
        // Written out of order, with a non-image file beside them.
        foreach (int f in new[] { 2, 0, 3, 1 })
            WritePng(Path.Combine(folder, $"{f:D4}.png"), rgb[(f * n)..((f + 1) * n)], 10, 6);
        File.WriteAllText(Path.Combine(folder, "notes.txt"), "not a frame");
        var v = VideoInput.ReadClip(folder);
        Assert.Equal((4, 6, 10), (v.Frames, v.Height, v.Width));
        AssertBytes(rgb, v);
    }

    [Fact]
    public void FolderOfMismatchedFramesNamesTheOddFile()
    {
        var folder = P("clip");
        Directory.CreateDirectory(folder);
        WritePng(Path.Combine(folder, "0000.png"), RandomRgb(4, 1, 6, 10), 10, 6);
        WritePng(Path.Combine(folder, "0001.png"), RandomRgb(5, 1, 6, 11), 11, 6);
        var e = Assert.Throws<VideoInputException>(() => VideoInput.ReadClip(folder));
        Assert.Equal(Path.Combine(folder, "0001.png"), e.Path);
        Assert.StartsWith(e.Path + ":", e.Message);
        Assert.Contains("11x6", e.Message);
        Assert.Contains("10x6", e.Message);
    }

    [Fact]
    public void BadPathsGiveOneClearError()
    {
        var empty = P("empty");
        Directory.CreateDirectory(empty);
        File.WriteAllText(P("clip.txt"), "text");
        File.WriteAllBytes(P("zero.png"), []);
        File.WriteAllText(P("text.png"), "this is not an image");
        File.WriteAllText(P("text.y4m"), "this is not a y4m\n");
        var cases = new (Func<VideoFrames> Read, string Path, string Says)[]
        {
            (() => VideoInput.ReadClip(empty), empty, "no .png or .jpg frames"),
            (() => VideoInput.ReadClip(P("missing.png")), P("missing.png"), "no such file"),
            (() => VideoInput.ReadClip(P("missing")), P("missing"), "no such file"),
            (() => VideoInput.ReadImage(P("missing.jpg")), P("missing.jpg"), "no such file"),
            (() => VideoInput.ReadClip(P("missing.y4m")), P("missing.y4m"), "no such file"),
            (() => VideoInput.ReadClip(P("clip.txt")), P("clip.txt"), "unknown clip extension '.txt'"),
            (() => VideoInput.ReadImage(P("clip.txt")), P("clip.txt"), "unknown image extension '.txt'"),
            (() => VideoInput.ReadImage(empty), empty, "is a folder"),
            (() => VideoInput.ReadImage(P("zero.png")), P("zero.png"), "unknown format"),
            (() => VideoInput.ReadImage(P("text.png")), P("text.png"), "unknown format"),
            (() => VideoInput.ReadClip(P("text.y4m")), P("text.y4m"), "not a YUV4MPEG2 file"),
        };
        foreach (var (read, path, says) in cases)
        {
            var e = Assert.Throws<VideoInputException>(() => read());
            Assert.Equal(path, e.Path);
            Assert.StartsWith(path + ": ", e.Message);
            Assert.Contains(says, e.Message);
        }
    }

    [Fact]
    public void GifFramesAndColoursComeBack()
    {
        // At most 256 colours, each exactly representable, so the palette holds them and the read is exact.
        var video = TestVideos.FewColors(frames: 5, height: 12, width: 20, colors: 40, seed: 6);
        GifWriter.Write(video, P("a.gif"));
        var v = VideoInput.ReadClip(P("a.gif"));
        Assert.Equal((5, 12, 20), (v.Frames, v.Height, v.Width));
        AssertBytes(TestVideos.ExpectedBytes(video), v);
        // As a still image, a GIF is its first frame.
        AssertBytes(TestVideos.ExpectedBytes(video.Slice(0, 1)), VideoInput.ReadImage(P("a.gif")));
    }

    [Fact]
    public void Y4mFromOurWriterMatchesTheBt601InverseOfItsBytes()
    {
        var video = TestVideos.Smooth(frames: 3, height: 32, width: 48);
        Y4mWriter.Write(video, P("a.y4m"));
        var planes = MiniY4m.Read(File.ReadAllBytes(P("a.y4m")));
        var v = VideoInput.ReadClip(P("a.y4m"));
        Assert.Equal((3, 32, 48), (v.Frames, v.Height, v.Width));
        // Reference: invert the writer's BT.601 limited-range matrix numerically, in float64; chroma sample i sits at
        // luma coordinate 2i + ½ (C420jpeg) and is interpolated linearly in x and y.
        var inverse = Invert3([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]);
        int w = 48, h = 32;
        double err = 0, norm = 0;
        for (int f = 0; f < 3; f++)
        {
            var (yp, up, vp) = planes.Frames[f];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    double[] yuv = [yp[y * w + x] - 16.0, Bilinear(up, w / 2, h / 2, x, y) - 128.0, Bilinear(vp, w / 2, h / 2, x, y) - 128.0];
                    for (int k = 0; k < 3; k++)
                    {
                        double r = Math.Clamp(inverse[k][0] * yuv[0] + inverse[k][1] * yuv[1] + inverse[k][2] * yuv[2], 0, 1);
                        double got = v.Rgb[((f * h + y) * w + x) * 3 + k];
                        err += (got - r) * (got - r);
                        norm += r * r;
                    }
                }
        }
        Assert.InRange(Math.Sqrt(err / norm), 0, 1e-6);
        // And the round trip stays close to the source (4:2:0 loses chroma detail, 8-bit YUV a little more): the bound
        // ffmpeg's own accurate decode of the same file meets in Y4mWriterTests.
        var source = TestVideos.ExpectedBytes(video);
        Assert.InRange(source.Select((b, i) => Math.Abs(b - v.Rgb[i] * 255.0)).Average(), 0, 3.0);
    }

    [Fact]
    public void Y4mFlatColoursRoundTripWithinYuvRounding()
    {
        float[][] colors = [[0.2f, 0.5f, 0.8f], [1f, 0f, 0f], [0f, 1f, 0f], [0f, 0f, 1f], [0.9f, 0.9f, 0.1f], [0f, 0f, 0f], [1f, 1f, 1f]];
        int h = 6, w = 7; // odd width: the last chroma column covers one pixel
        var rgb = new float[colors.Length * h * w * 3];
        for (int p = 0; p < rgb.Length / 3; p++) colors[p / (h * w)].CopyTo(rgb, 3 * p);
        Y4mWriter.Write(new VideoFrames(colors.Length, h, w, rgb), P("flat.y4m"));
        var v = VideoInput.ReadClip(P("flat.y4m"));
        Assert.Equal((colors.Length, h, w), (v.Frames, v.Height, v.Width));
        // Y, Cb, Cr each rounded by at most ½ level: at most ~1.5 levels of RGB.
        for (int i = 0; i < rgb.Length; i++) Assert.InRange(Math.Abs(v.Rgb[i] - rgb[i]) * 255, 0, 2.0);
    }

    [Fact]
    public void Y4m444AndMonoAreRead()
    {
        // One 2×1 frame: pixel 0 is Y 16 / Cb 128 / Cr 240 (pure Cr: R = 1.402·112/224, clamped G, B = 0),
        // pixel 1 is Y 235 with neutral chroma (white).
        var file = new MemoryStream();
        file.Write(Encoding.ASCII.GetBytes("YUV4MPEG2 W2 H1 F25:1 Ip A0:0 C444 XYSCSS=444\nFRAME\n"));
        file.Write([16, 235, 128, 128, 240, 128]);
        File.WriteAllBytes(P("c444.y4m"), file.ToArray());
        var v = VideoInput.ReadClip(P("c444.y4m"));
        Assert.Equal((1, 1, 2), (v.Frames, v.Height, v.Width));
        double r = 1.402 * 112 / 224, g = -0.714136 * 112 / 224;
        Assert.Equal(r, v.Rgb[0], 1e-5);
        Assert.Equal(Math.Max(g, 0), v.Rgb[1], 1e-5);
        Assert.Equal(0, v.Rgb[2], 1e-6);
        Assert.Equal([1f, 1f, 1f], v.Rgb[3..6]);

        File.WriteAllBytes(P("mono.y4m"), [.. Encoding.ASCII.GetBytes("YUV4MPEG2 W3 H1 Cmono\nFRAME\n"), 16, 125, 235, .. Encoding.ASCII.GetBytes("FRAME Ixyz\n"), 235, 16, 16]);
        var m = VideoInput.ReadClip(P("mono.y4m"));
        Assert.Equal((2, 1, 3), (m.Frames, m.Height, m.Width));
        double mid = (125 - 16) / 219.0;
        Assert.Equal(new double[] { 0, 0, 0, mid, mid, mid, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0 }, m.Rgb.Select(x => (double)x), new Tolerance(1e-6));
    }

    [Fact]
    public void Y4mHeadersThatDoNotMatchTheFileAreRefusedBeforeAllocating()
    {
        var video = TestVideos.Smooth(frames: 2, height: 8, width: 8);
        Y4mWriter.Write(video, P("a.y4m"));
        var good = File.ReadAllBytes(P("a.y4m"));
        string header = Encoding.ASCII.GetString(good, 0, Array.IndexOf(good, (byte)'\n'));
        var body = good[(header.Length)..];
        var cases = new (string Header, byte[] Body, string Says)[]
        {
            (header.Replace("W8", "W8192").Replace("H8", "H8192"), body, "truncated"),
            (header.Replace("W8", "W9"), body, "FRAME"),
            (header.Replace("W8", "W7"), body, "FRAME"),
            (header.Replace("W8", "W99999"), body, "bad header size 'W99999'"),
            (header.Replace("W8", "W-8"), body, "bad header size"),
            (header.Replace("W8", "W"), body, "bad header size"),
            (header.Replace("W8 ", ""), body, "no W"),
            (header.Replace("C420jpeg", "C422"), body, "C422 is not read"),
            (header.Replace("C420jpeg", "C420p10"), body, "C420p10 is not read"),
            (header.Replace("Ip", "It"), body, "interlaced"),
            (header.Replace("YUV4MPEG2", "YUV4MPEG"), body, "not a YUV4MPEG2"),
            (header, body[..^1], "frame 1 is truncated"),
            (header, [.. body, .. "FRAME\n"u8.ToArray()], "frame 2 is truncated"),
            (header, [.. body, (byte)'x'], "frame 2"),
            (header, "\n"u8.ToArray(), "holds no frames"),
            (header + new string(' ', 5000), body, "no header line within"),
        };
        foreach (var (h, b, says) in cases)
        {
            File.WriteAllBytes(P("lie.y4m"), [.. Encoding.ASCII.GetBytes(h), .. b]);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<VideoInputException>(() => VideoInput.ReadClip(P("lie.y4m")));
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.StartsWith(P("lie.y4m") + ": ", e.Message);
            Assert.Contains(says, e.Message);
            Assert.InRange(allocated, 0, 1 << 20);
        }
    }

    [Fact]
    public void LyingImageSizesAreRefusedBeforeDecoding()
    {
        // A PNG header (correct CRC) claiming 20000×20000 over a few bytes of data, and one claiming 4000×4000
        // (within the frame limits, but far more than a 100-byte PNG can encode).
        foreach (var (w, h, says) in new[] { (20000, 20000, "outside"), (4000, 4000, "cannot hold 4000x4000") })
        {
            var png = new MemoryStream();
            using (var image = new Image<Rgb24>(2, 2)) image.SaveAsPng(png);
            var bytes = png.ToArray();
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(16), w);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(20), h);
            uint crc = PngCrc(bytes.AsSpan(12, 17));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(29), crc);
            File.WriteAllBytes(P("lie.png"), bytes);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<VideoInputException>(() => VideoInput.ReadImage(P("lie.png")));
            Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 1 << 20);
            Assert.StartsWith(P("lie.png") + ": ", e.Message);
            Assert.Contains(says, e.Message);
        }
    }

    [Fact]
    public void ToVaeInputIsPlanarAndScaledToMinusOneOne()
    {
        var rng = new Random(7);
        int f = 2, h = 3, w = 5;
        var rgb = Enumerable.Range(0, f * h * w * 3).Select(_ => rng.NextSingle()).ToArray();
        using var t = new VideoFrames(f, h, w, rgb).ToVaeInput();
        Assert.Equal([3, f, h, w], t.Shape);
        var got = t.ToFloatArray();
        double err = 0, norm = 0;
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < f * h * w; p++)
            {
                double r = 2.0 * rgb[3 * p + c] - 1.0, g = got[c * f * h * w + p];
                Assert.False(double.IsNaN(g));
                err += (g - r) * (g - r); norm += r * r;
            }
        Assert.InRange(Math.Sqrt(err / norm), 0, 1e-7);
    }

    [Fact]
    public void SliceCopiesTheNamedFrames()
    {
        var video = TestVideos.Smooth(frames: 5, height: 4, width: 6);
        var s = video.Slice(3, 2);
        Assert.Equal((2, 4, 6), (s.Frames, s.Height, s.Width));
        Assert.Equal(video.Rgb[(3 * video.FrameValues)..], s.Rgb);
        Assert.Throws<ArgumentOutOfRangeException>(() => video.Slice(4, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => video.Slice(-1, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => video.Slice(0, 0));
    }

    [FfmpegFact]
    public void Mp4IsReadThroughFfmpeg()
    {
        var video = TestVideos.Smooth(frames: 9, height: 32, width: 48);
        var path = P("v.mp4");
        Sora.Cli.Mp4Writer.Write(video, path, fps: 16, CancellationToken.None);
        var v = VideoInput.ReadClip(path);
        Assert.Equal((9, 32, 48), (v.Frames, v.Height, v.Width));
        // The same bytes ffmpeg's own rgb24 decode gives (default scaling, as the reader asks for).
        AssertBytes(Ffmpeg.DecodeRgb24("-i", path), v);
        var source = TestVideos.ExpectedBytes(video);
        Assert.InRange(source.Select((b, i) => Math.Abs(b - v.Rgb[i] * 255.0)).Average(), 0, 6.0);

        File.WriteAllBytes(P("junk.mp4"), RandomRgb(8, 1, 10, 10));
        var e = Assert.Throws<VideoInputException>(() => VideoInput.ReadClip(P("junk.mp4")));
        Assert.StartsWith(P("junk.mp4") + ": ", e.Message);
    }

    [FfmpegFact]
    public void Y4mReadsAsFfmpegDecodesIt()
    {
        // ffmpeg as an independent decoder of the same files. Flat colours test the matrix and levels alone: within a
        // level of ffmpeg's accurate conversion. On detail, ffmpeg interpolates chroma its own way (they differ most
        // at the square's edges), so there the reader must only be as close to the source as ffmpeg is.
        float[][] colors = [[0.2f, 0.5f, 0.8f], [1f, 0f, 0f], [0f, 1f, 0f], [0f, 0f, 1f], [0.9f, 0.9f, 0.1f], [0.3f, 0.3f, 0.3f]];
        var flat = new float[colors.Length * 8 * 8 * 3];
        for (int p = 0; p < flat.Length / 3; p++) colors[p / 64].CopyTo(flat, 3 * p);
        Y4mWriter.Write(new VideoFrames(colors.Length, 8, 8, flat), P("flat.y4m"));
        var ours = VideoInput.ReadClip(P("flat.y4m"));
        var theirs = Ffmpeg.DecodeRgb24("-i", P("flat.y4m"), "-sws_flags", Ffmpeg.AccurateScaling);
        Assert.InRange(theirs.Select((b, i) => Math.Abs(b - ours.Rgb[i] * 255.0)).Max(), 0, 1.0);

        var video = TestVideos.Smooth(frames: 3, height: 32, width: 48);
        Y4mWriter.Write(video, P("a.y4m"));
        ours = VideoInput.ReadClip(P("a.y4m"));
        theirs = Ffmpeg.DecodeRgb24("-i", P("a.y4m"), "-sws_flags", Ffmpeg.AccurateScaling);
        Assert.Equal(theirs.Length, ours.Rgb.Length);
        var source = TestVideos.ExpectedBytes(video);
        double oursToSource = source.Select((b, i) => Math.Abs(b - ours.Rgb[i] * 255.0)).Average();
        double theirsToSource = source.Select((b, i) => (double)Math.Abs(b - theirs[i])).Average();
        Assert.InRange(oursToSource, 0, theirsToSource + 0.1);
        Assert.InRange(theirs.Select((b, i) => Math.Abs(b - ours.Rgb[i] * 255.0)).Average(), 0, 1.5);
    }

    [WithoutFfmpegFact]
    public void Mp4WithoutFfmpegSaysWhatToDo()
    {
        File.WriteAllBytes(P("v.mp4"), [0, 0, 0, 0x18, (byte)'f', (byte)'t', (byte)'y', (byte)'p']);
        var e = Assert.Throws<VideoInputException>(() => VideoInput.ReadClip(P("v.mp4")));
        Assert.StartsWith(P("v.mp4") + ": reading .mp4 needs ffmpeg on PATH", e.Message);
    }

    private static uint PngCrc(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte d in data)
        {
            c ^= d;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (uint)-(int)(c & 1));
        }
        return ~c;
    }

    /// <summary>A chroma plane sampled at luma pixel (x, y): position (x − ½)/2 in chroma samples, clamped to the plane, linear in each axis.</summary>
    private static double Bilinear(byte[] plane, int cw, int ch, int x, int y)
    {
        static (int I0, int I1, double T) Axis(int luma, int n)
        {
            double u = Math.Clamp((luma - 0.5) / 2, 0, n - 1);
            int i0 = (int)Math.Floor(u);
            return (i0, Math.Min(i0 + 1, n - 1), u - i0);
        }
        var (x0, x1, tx) = Axis(x, cw);
        var (y0, y1, ty) = Axis(y, ch);
        double top = (1 - tx) * plane[y0 * cw + x0] + tx * plane[y0 * cw + x1];
        double bottom = (1 - tx) * plane[y1 * cw + x0] + tx * plane[y1 * cw + x1];
        return (1 - ty) * top + ty * bottom;
    }

    private static double[][] Invert3(double[][] m)
    {
        double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                   + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
        var inv = new double[3][];
        for (int i = 0; i < 3; i++)
        {
            inv[i] = new double[3];
            for (int j = 0; j < 3; j++)
            {
                // Cofactor of (j, i) over the determinant.
                int r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;
                inv[i][j] = (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det;
            }
        }
        return inv;
    }
}

/// <summary>A test of what happens where ffmpeg is not installed; skipped where it is.</summary>
public sealed class WithoutFfmpegFactAttribute : FactAttribute
{
    public WithoutFfmpegFactAttribute()
    {
        if (FfmpegReader.FindFfmpeg() is not null) Skip = "ffmpeg is on PATH";
    }
}

file sealed class Tolerance(double eps) : IEqualityComparer<double>
{
    public bool Equals(double a, double b) => Math.Abs(a - b) <= eps;
    public int GetHashCode(double x) => 0;
}
