using Xunit;

namespace Sora.Tests.EndToEnd;

/// <summary>The viewer's measurement itself, on clips drawn here with a known colour, background and motion.</summary>
public sealed class ClipMeasureTests
{
    [Theory]
    [InlineData("yellow", "black", "up")]
    [InlineData("red", "blue", "right")]
    [InlineData("green", "white", "left")]
    [InlineData("white", "red", "down")]
    [InlineData("blue", "yellow", "static")]
    public void Reads_colour_background_and_direction_of_a_drawn_square(string colour, string background, string direction)
    {
        var clip = Draw(colour, background, direction, frames: 9, size: 32, seed: colour.Length * 31 + direction.Length);
        var seen = ClipMeasure.Of(clip, 9, 32, 32);
        Assert.Equal(colour, seen.ObjectColour);
        Assert.Equal(background, seen.BackgroundColour);
        Assert.Equal(direction, seen.Direction);
    }

    [Fact]
    public void The_object_colour_is_the_one_most_of_its_pixels_show()
    {
        // A black square on red with three of its eight columns white: the mean of its pixels is a grey nearest
        // green, but most of them are black.
        const int frames = 5, size = 16;
        var clip = Draw("black", "red", "static", frames, size, seed: 2);
        var white = ClipMeasure.Palette["white"];
        for (int f = 0; f < frames; f++)
            for (int y = 4; y < 12; y++)
                for (int x = 9; x < 12; x++)
                {
                    int p = ((f * size + y) * size + x) * 3;
                    (clip[p], clip[p + 1], clip[p + 2]) = ((float)white.R, (float)white.G, (float)white.B);
                }
        Assert.Equal("black", ClipMeasure.Of(clip, frames, size, size).ObjectColour);
    }

    [Fact]
    public void An_empty_clip_has_no_object_and_no_direction()
    {
        var clip = Draw("red", "green", "static", frames: 5, size: 16, seed: 1, objectSize: 0);
        var seen = ClipMeasure.Of(clip, 5, 16, 16);
        Assert.Null(seen.ObjectColour);
        Assert.Equal("green", seen.BackgroundColour);
        Assert.Equal("static", seen.Direction);
    }

    /// <summary>A square of side objectSize travelling 12 px the given way over a noisy plain background.</summary>
    private static float[] Draw(string colour, string background, string direction, int frames, int size, int seed, int objectSize = 8)
    {
        var rng = new Random(seed);
        var fg = ClipMeasure.Palette[colour];
        var bg = ClipMeasure.Palette[background];
        var (dx, dy) = direction switch { "up" => (0, -12), "down" => (0, 12), "left" => (-12, 0), "right" => (12, 0), _ => (0, 0) };
        var rgb = new float[frames * size * size * 3];
        for (int f = 0; f < frames; f++)
        {
            double t = (double)f / (frames - 1);
            int x0 = (int)Math.Round(size / 2.0 - objectSize / 2.0 - dx / 2.0 + dx * t);
            int y0 = (int)Math.Round(size / 2.0 - objectSize / 2.0 - dy / 2.0 + dy * t);
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    bool inside = x >= x0 && x < x0 + objectSize && y >= y0 && y < y0 + objectSize;
                    var c = inside ? fg : bg;
                    int p = ((f * size + y) * size + x) * 3;
                    rgb[p] = (float)(c.R + 0.03 * (rng.NextDouble() - 0.5));
                    rgb[p + 1] = (float)(c.G + 0.03 * (rng.NextDouble() - 0.5));
                    rgb[p + 2] = (float)(c.B + 0.03 * (rng.NextDouble() - 0.5));
                }
        }
        return rgb;
    }
}
