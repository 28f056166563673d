using Sora.Cli.Serve;
using Sora.Native.Video;
using Sora.Tests.Video;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>The pixel count of a GIF upload, read from its headers before any decoding.</summary>
public sealed class UploadBudgetTests
{
    private static byte[] Gif(int frames, int height, int width)
    {
        string path = Path.Combine(Path.GetTempPath(), $"sora-budget-{Guid.NewGuid():N}.gif");
        GifWriter.Write(TestVideos.Smooth(frames, height, width), path, fps: 8);
        try
        {
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(1, 16, 24)]
    [InlineData(9, 32, 32)]
    [InlineData(17, 24, 40)]
    public void A_whole_GIF_counts_frames_times_its_canvas(int frames, int height, int width)
        => Assert.Equal((long)frames * height * width, UploadBudget.GifPixels(Gif(frames, height, width)));

    [Fact]
    public void A_GIF_cut_short_or_not_a_GIF_has_no_count()
    {
        var gif = Gif(5, 16, 16);
        for (int cut = 0; cut < gif.Length; cut += 7) Assert.Null(UploadBudget.GifPixels(gif.AsSpan(0, cut)));
        Assert.Null(UploadBudget.GifPixels("PNG not a gif"u8));
    }

    [Fact]
    public void Flipped_bits_never_throw()
    {
        var gif = Gif(5, 16, 16);
        var rng = new Random(3);
        for (int i = 0; i < 200; i++)
        {
            var copy = (byte[])gif.Clone();
            for (int k = 0; k < 3; k++) copy[rng.Next(copy.Length)] ^= (byte)(1 << rng.Next(8));
            _ = UploadBudget.GifPixels(copy);
        }
    }

    /// <summary>A GIF whose header claims a 4096×4096 canvas for each of its 9 frames: 151M pixels, refused unopened.</summary>
    public static byte[] LyingGif()
    {
        var gif = Gif(9, 32, 32);
        gif[6] = 0; gif[7] = 0x10; gif[8] = 0; gif[9] = 0x10;
        return gif;
    }

    [Fact]
    public void The_lying_GIF_claims_more_than_the_default_budget()
        => Assert.True(UploadBudget.GifPixels(LyingGif()) > new ServerLimits().MaxFrames * new ServerLimits().MaxPixels);
}
