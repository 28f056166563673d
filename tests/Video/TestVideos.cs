using Sora.Native.Video;

namespace Sora.Tests.Video;

/// <summary>Synthetic videos for the writer tests, with their expected 8-bit pixels computed here, not by the writers.</summary>
public static class TestVideos
{
    /// <summary>A smooth moving gradient with a bright square: many colours, little fine detail.</summary>
    public static VideoFrames Smooth(int frames, int height, int width)
    {
        var rgb = new float[frames * height * width * 3];
        for (int f = 0; f < frames; f++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    int p = ((f * height + y) * width + x) * 3;
                    bool square = Math.Abs(x - (width / 4 + 2 * f)) < width / 6 && Math.Abs(y - height / 2) < height / 6;
                    rgb[p] = square ? 0.95f : (float)x / (width - 1);
                    rgb[p + 1] = square ? 0.9f : (float)y / (height - 1);
                    rgb[p + 2] = square ? 0.1f : 0.5f + 0.4f * MathF.Sin(0.3f * f + 0.1f * (x + y));
                }
        return new VideoFrames(frames, height, width, rgb);
    }

    /// <summary>Noise over a fixed set of <paramref name="colors"/> colours, each in its own 5-bit cell, so a 256-colour palette holds them exactly.</summary>
    public static VideoFrames FewColors(int frames, int height, int width, int colors, int seed)
    {
        var rng = new Random(seed);
        var palette = new float[colors][];
        var used = new HashSet<int>();
        for (int i = 0; i < colors; i++)
        {
            int r, g, b;
            do { r = rng.Next(32); g = rng.Next(32); b = rng.Next(32); } while (!used.Add(r << 10 | g << 5 | b));
            // A colour in the middle of its 8-wide cell, as 8-bit value / 255.
            palette[i] = [(r * 8 + 4) / 255f, (g * 8 + 4) / 255f, (b * 8 + 4) / 255f];
        }
        var rgb = new float[frames * height * width * 3];
        for (int p = 0; p < frames * height * width; p++)
            palette[rng.Next(colors)].CopyTo(rgb, 3 * p);
        return new VideoFrames(frames, height, width, rgb);
    }

    /// <summary>The 8-bit value a writer should store for <paramref name="v"/>: round(clamp(v, 0, 1) · 255).</summary>
    public static byte[] ExpectedBytes(VideoFrames v)
        => v.Rgb.Select(x => (byte)Math.Round(Math.Clamp((double)x, 0, 1) * 255, MidpointRounding.AwayFromZero)).ToArray();

    public static string NewTempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sora-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
