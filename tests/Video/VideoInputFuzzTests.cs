using System.Diagnostics;
using System.Text;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using Sora.Native.Video;
using Xunit;
using Xunit.Abstractions;

namespace Sora.Tests.Video;

/// <summary>
/// Thousands of truncated, bit-flipped, overwritten and header-lying PNG, JPEG, GIF and y4m files (fixed seed, so a
/// failing case number reproduces): reading each must either give a well-formed video or throw a
/// <see cref="VideoInputException"/> naming the file, never anything else, never hang, and never allocate
/// far beyond what the file could hold.
/// </summary>
public sealed class VideoInputFuzzTests(ITestOutputHelper output) : IDisposable
{
    private const int Seed = 20261201;
    private const int Cases = 3000;
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(10);
    /// <summary>A small file's decode needs a few megabytes; one that trusted a lying header would need hundreds.</summary>
    private const long AllocationLimit = 64L << 20;

    private readonly string _dir = TestVideos.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Encode(Action<Stream> write)
    {
        var s = new MemoryStream();
        write(s);
        return s.ToArray();
    }

    private (string Ext, byte[] Bytes)[] Bases()
    {
        var smooth = TestVideos.Smooth(1, 16, 24);
        var bytes = TestVideos.ExpectedBytes(smooth);
        var few = TestVideos.FewColors(3, 12, 16, 30, seed: 9);
        string gif = Path.Combine(_dir, "base.gif"), y4m = Path.Combine(_dir, "base.y4m");
        GifWriter.Write(few, gif);
        Y4mWriter.Write(TestVideos.Smooth(2, 8, 10), y4m);
        using var image = Image.LoadPixelData<Rgb24>(bytes, 24, 16);
        return
        [
            (".png", Encode(s => PngWriter.WriteImage(s, bytes, 24, 16))),
            (".png", Encode(s => image.Save(s, new PngEncoder { InterlaceMethod = PngInterlaceMode.Adam7, ColorType = PngColorType.Palette }))),
            (".jpg", Encode(s => image.Save(s, new JpegEncoder { Quality = 90 }))),
            (".jpg", Encode(s => image.Save(s, new JpegEncoder { Quality = 75, ColorType = JpegColorType.YCbCrRatio444 }))),
            (".gif", File.ReadAllBytes(gif)),
            (".y4m", File.ReadAllBytes(y4m)),
            (".y4m", [.. Encoding.ASCII.GetBytes("YUV4MPEG2 W3 H2 F25:1 C444\nFRAME\n"), .. Enumerable.Range(0, 18).Select(i => (byte)(16 + 11 * i)),
                      .. Encoding.ASCII.GetBytes("FRAME\n"), .. Enumerable.Range(0, 18).Select(i => (byte)(200 - 9 * i))]),
        ];
    }

    private static readonly string[] HeaderNumbers = ["0", "1", "7", "9", "-1", "65535", "8192", "16385", "99999999999", "", "2147483647"];

    /// <summary>One mutation of <paramref name="file"/>; the kind is returned so failures say what was done.</summary>
    private static (int Kind, byte[] Bytes) Mutate(Random rng, string ext, byte[] file)
    {
        int kind = rng.Next(ext == ".y4m" ? 6 : 5);
        var b = (byte[])file.Clone();
        switch (kind)
        {
            case 0: // truncated
                return (kind, b[..rng.Next(b.Length)]);
            case 1: // a few bit flips anywhere
                for (int n = rng.Next(1, 5); n > 0; n--) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                return (kind, b);
            case 2: // bit flips in the header, where sizes and counts live
                for (int n = rng.Next(1, 3); n > 0; n--) b[rng.Next(Math.Min(64, b.Length))] ^= (byte)(1 << rng.Next(8));
                return (kind, b);
            case 3: // bytes overwritten with extreme values
                for (int n = rng.Next(1, 4); n > 0; n--) b[rng.Next(b.Length)] = (byte)(rng.Next(4) switch { 0 => 0x00, 1 => 0xFF, 2 => 0x7F, _ => rng.Next(256) });
                return (kind, b);
            case 4: // a slice removed or repeated
            {
                int at = rng.Next(b.Length), len = rng.Next(1, Math.Min(64, b.Length - at) + 1);
                return (kind, rng.Next(2) == 0 ? [.. b[..at], .. b[(at + len)..]] : [.. b[..(at + len)], .. b[at..]]);
            }
            default: // y4m: a header number replaced by a lie
            {
                int eol = Array.IndexOf(b, (byte)'\n');
                var tokens = Encoding.ASCII.GetString(b, 0, eol).Split(' ');
                int t = rng.Next(1, tokens.Length);
                tokens[t] = tokens[t][0] + HeaderNumbers[rng.Next(HeaderNumbers.Length)];
                return (kind, [.. Encoding.ASCII.GetBytes(string.Join(' ', tokens)), .. b[eol..]]);
            }
        }
    }

    [Fact]
    public async Task MutatedFilesFailOnlyWithVideoInputExceptionQuicklyAndWithinBoundedAllocation()
    {
        var rng = new Random(Seed);
        var bases = Bases();
        foreach (var (ext, bytes) in bases)
        {
            // Every base reads as it is, so the mutations start from a file the reader accepts.
            string good = Path.Combine(_dir, "good" + ext);
            File.WriteAllBytes(good, bytes);
            VideoInput.ReadClip(good);
        }
        var accepted = new int[6];
        var rejected = new int[6];
        long worst = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Cases; i++)
        {
            var (ext, baseBytes) = bases[rng.Next(bases.Length)];
            var (kind, bytes) = Mutate(rng, ext, baseBytes);
            string path = Path.Combine(_dir, $"case{ext}");
            File.WriteAllBytes(path, bytes);
            (VideoFrames? video, Exception? error, long allocated) result;
            try { result = await Task.Run(() => ReadCase(path)).WaitAsync(CaseTimeout); }
            catch (TimeoutException) { Assert.Fail($"case {i} ({ext}, kind {kind}, seed {Seed}) did not finish in {CaseTimeout}"); throw; }
            var (video, error, allocated) = result;
            string what = $"case {i} ({ext}, kind {kind}, {bytes.Length} bytes, seed {Seed})";
            if (error is VideoInputException vie)
            {
                Assert.True(vie.Path == path && vie.Message.StartsWith(path + ": ", StringComparison.Ordinal), $"{what}: the message does not name the file: {vie.Message}");
                rejected[kind]++;
            }
            else if (error is not null)
                Assert.Fail($"{what} threw {error.GetType().Name}: {error}");
            else
            {
                Assert.All(video!.Rgb, v => Assert.InRange(v, 0f, 1f)); // NaN fails InRange too
                accepted[kind]++;
            }
            Assert.True(allocated <= AllocationLimit, $"{what} allocated {allocated} bytes");
            worst = Math.Max(worst, allocated);
        }
        output.WriteLine($"{Cases} cases in {clock.Elapsed.TotalSeconds:F1} s; accepted per kind [{string.Join(", ", accepted)}], " +
            $"rejected per kind [{string.Join(", ", rejected)}]; worst allocation {worst} bytes");
        // The mutations must exercise both outcomes, or this test checks nothing.
        Assert.True(rejected.Sum() > Cases / 3, $"only {rejected.Sum()} of {Cases} cases were rejected");
        Assert.All(rejected, n => Assert.True(n > 0));
        Assert.True(accepted.Sum() > 0, "no mutated file was accepted");
    }

    private static (VideoFrames?, Exception?, long) ReadCase(string path)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            var v = VideoInput.ReadClip(path);
            return (v, null, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        catch (Exception e)
        {
            return (null, e, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }
}
