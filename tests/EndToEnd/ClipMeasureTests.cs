using Xunit;

namespace Sora.Tests.EndToEnd;

/// <summary>The viewer's measurement itself, on clips drawn here with a known colour, background, shape and motion.</summary>
public sealed class ClipMeasureTests
{
    [Theory]
    [InlineData("yellow", "black", "up")]
    [InlineData("red", "blue", "right")]
    [InlineData("green", "white", "left")]
    [InlineData("white", "red", "down")]
    [InlineData("blue", "yellow", "static")]
    public void Reads_colour_background_and_direction_of_a_noisy_square(string colour, string background, string direction)
    {
        var clip = DrawNoisySquare(colour, background, direction, frames: 9, size: 32, seed: colour.Length * 31 + direction.Length);
        var seen = ClipMeasure.Of(clip, 9, 32, 32);
        Assert.Equal(colour, seen.ObjectColour);
        Assert.Equal(background, seen.BackgroundColour);
        Assert.Equal(direction, seen.Motion);
    }

    [Fact]
    public void The_object_colour_is_the_one_most_of_its_pixels_show()
    {
        // A black square on red with three of its eight columns white: the mean of its pixels is a grey, but most
        // of them are black.
        const int frames = 5, size = 16;
        var clip = DrawNoisySquare("black", "red", "static", frames, size, seed: 2);
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

    [Theory]
    [InlineData(16, 5)]
    [InlineData(64, 17)]
    public void An_empty_clip_has_no_object_shape_or_motion(int size, int frames)
    {
        var seen = ClipMeasure.Of(Painter.Render("green", frames, size, size), frames, size, size);
        Assert.Null(seen.ObjectColour);
        Assert.Null(seen.Shape);
        Assert.Equal("green", seen.BackgroundColour);
        Assert.Equal("static", seen.Motion);
        Assert.False(seen.Shows("rotating"));
        Assert.False(seen.Shows("bouncing"));
    }

    public static TheoryData<string, double, double> ShapesSizesAndTurns()
    {
        var data = new TheoryData<string, double, double>();
        // data.py's radii on a 64-pixel frame: small 0.10–0.13, large 0.16–0.20 of the side.
        foreach (var shape in ClipMeasure.Shapes)
            foreach (double r in new[] { 6.4, 8.3, 10.2, 12.8 })
                foreach (double degrees in shape == "circle" ? new[] { 0.0 } : new[] { 0.0, 13, 31, 47, 70 })
                    data.Add(shape, r, degrees);
        return data;
    }

    [Theory]
    [MemberData(nameof(ShapesSizesAndTurns))]
    public void Reads_every_shape_whatever_its_size_rotation_and_place(string shape, double r, double degrees)
    {
        // Several sub-pixel placements of one still frame: every one must read as the drawn shape.
        foreach (var (cx, cy) in new[] { (32.0, 32.0), (27.3, 35.6), (38.8, 29.1) })
        {
            var frame = Painter.Render("black", 1, 64, 64, Painter.Still("white", shape, 1, cx, cy, r, degrees * Math.PI / 180));
            var mask = ClipMeasure.ObjectMask(frame, 1, 64, 64, ClipMeasure.BackgroundOf(frame, 1, 64, 64));
            Assert.Equal(shape, ClipMeasure.ShapeOf(mask, 64, 64));
        }
    }

    [Theory]
    [InlineData("yellow", "orange", "square")] // the closest pair in the palette (0.367 apart): only whole pixels count
    [InlineData("orange", "yellow", "circle")]
    [InlineData("red", "orange", "triangle")]
    [InlineData("purple", "gray", "star")]
    [InlineData("brown", "red", "circle")]
    [InlineData("brown", "black", "square")]
    [InlineData("pink", "white", "star")]
    [InlineData("blue", "purple", "triangle")]
    [InlineData("cyan", "blue", "square")]
    [InlineData("gray", "green", "circle")]
    [InlineData("white", "pink", "triangle")]
    [InlineData("black", "brown", "star")]
    [InlineData("green", "cyan", "star")]
    [InlineData("yellow", "white", "circle")]
    public void Reads_colour_background_and_shape_of_every_palette_colour_even_at_low_contrast(string colour, string background, string shape)
    {
        var clip = Painter.Render(background, 17, 64, 64, Painter.Moving(colour, shape, "right", 17, 64, r: 7.5));
        var seen = ClipMeasure.Of(clip, 17, 64, 64);
        Assert.Equal((colour, background, shape, "right"), (seen.ObjectColour, seen.BackgroundColour, seen.Shape, seen.Motion));
    }

    public static TheoryData<string, string> Motions()
    {
        var data = new TheoryData<string, string>();
        foreach (var way in ClipMeasure.Directions.Keys) data.Add(way, "square");
        foreach (var shape in ClipMeasure.Shapes)
        {
            data.Add("growing", shape);
            data.Add("shrinking", shape);
            data.Add("bouncing", shape);
            if (shape != "circle") data.Add("rotating", shape); // a rotating circle looks static
        }
        data.Add("up and left", "star");
        data.Add("down and right", "triangle");
        data.Add("left", "circle");
        return data;
    }

    [Theory]
    [MemberData(nameof(Motions))]
    public void Reads_every_motion(string motion, string shape)
    {
        var clip = Painter.Render("blue", 17, 64, 64, Painter.Moving("yellow", shape, motion, 17, 64, r: 9));
        var seen = ClipMeasure.Of(clip, 17, 64, 64);
        Assert.True(seen.Shows(motion), $"{motion}: {seen}");
        Assert.Equal(shape, seen.Shape);
        foreach (var other in ClipMeasure.Directions.Keys.Append("growing").Append("shrinking").Where(m => m != motion))
            Assert.False(seen.Shows(other), $"{motion} also reads as {other}: {seen}");
        if (motion != "bouncing") Assert.Equal(motion is "rotating" ? "static" : motion, seen.Motion);
        Assert.Equal(motion == "rotating", seen.Shows("rotating"));
        Assert.Equal(motion == "bouncing", seen.Shows("bouncing"));
    }

    [Fact]
    public void A_still_object_is_static_and_neither_rotating_nor_bouncing()
    {
        var seen = ClipMeasure.Of(Painter.Render("white", 17, 64, 64, Painter.Still("red", "star", 17, 30, 33, 9, 0.3)), 17, 64, 64);
        Assert.Equal(("red", "white", "star", "static"), (seen.ObjectColour, seen.BackgroundColour, seen.Shape, seen.Motion));
        Assert.False(seen.Shows("rotating"));
        Assert.False(seen.Shows("bouncing"));
    }

    [Fact]
    public void An_object_missing_from_the_first_or_last_quarter_has_an_unknown_motion()
    {
        // data.py compares NaN centroid shifts here and answers "up"; a viewer would not call it any motion.
        var sprite = Painter.Moving("white", "square", "right", 17, 64, r: 8);
        var frames = Painter.Render("black", 17, 64, 64, sprite with { Cy = sprite.Cy.Select((y, f) => f is >= 6 and <= 10 ? y : -100).ToArray() });
        var seen = ClipMeasure.Of(frames, 17, 64, 64);
        Assert.Equal(("white", "square", "unknown"), (seen.ObjectColour, seen.Shape, seen.Motion));
        Assert.DoesNotContain(ClipMeasure.Directions.Keys, seen.Shows);
    }

    [Fact]
    public void Two_objects_moving_apart_read_by_halves()
    {
        var clip = new Sora.Native.Video.VideoFrames(17, 64, 64, Painter.Render("black", 17, 64, 64, Painter.Pair("red", "circle", "blue", "square", "moving apart", 17, 64)));
        var (left, right, background, gap) = ClipMeasure.PairOf(clip);
        Assert.Equal(("red", "blue", "black"), (left, right, background));
        Assert.True(gap > 6.4, $"gap grew {gap:F1} px");
        var together = new Sora.Native.Video.VideoFrames(17, 64, 64, Painter.Render("white", 17, 64, 64, Painter.Pair("green", "star", "pink", "triangle", "moving together", 17, 64)));
        var t = ClipMeasure.PairOf(together);
        Assert.Equal(("green", "pink", "white"), (t.Left, t.Right, t.Background));
        Assert.True(t.GapChange < -6.4, $"gap changed {t.GapChange:F1} px");
    }

    [Fact]
    public void Clips_drawn_by_data_py_read_as_data_py_measures_them()
    {
        // tools/train-default-model/data.py drew these (tests/EndToEnd/data-py-clips.txt says how) and measured them
        // itself: this measure must say the same on the same pixels.
        foreach (var (clip, expected) in DataPyClips.Load())
        {
            var seen = ClipMeasure.Of(clip);
            Assert.True(seen.MinimumMove == 0.1 * clip.Height, seen.ToString());
            var got = (seen.ObjectColour, seen.BackgroundColour, seen.Shape, seen.Motion, seen.Shows(expected.Wanted));
            Assert.True((expected.Colour, expected.Background, expected.Shape, expected.Motion, expected.Matches) == got,
                $"{expected.Caption}: data.py {expected}, here {seen}");
            foreach (var (want, have) in new[] { (expected.Dx, seen.Dx), (expected.Dy, seen.Dy), (expected.AreaRatio, seen.AreaRatio),
                         (expected.YRange, seen.YRange), (expected.Turned, seen.Turned) })
                Assert.True(Math.Abs(want - have) < 1e-9, $"{expected.Caption}: data.py {expected}, here {seen}");
        }
    }

    /// <summary>A square of side objectSize travelling 12 px the given way over a noisy plain background.</summary>
    private static float[] DrawNoisySquare(string colour, string background, string direction, int frames, int size, int seed, int objectSize = 8)
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

/// <summary>
/// data.py's drawing in C#: crisp shapes with 4×4-supersampled edges (<c>coverage</c>, <c>_polygon</c>) over a
/// plain background, frames [F, H, W, 3] in [0, 1], and tracks like its <c>_track</c> with the random choices fixed.
/// </summary>
public static class Painter
{
    /// <summary>One object: its colour, shape and per-frame centre, radius and angle (radians).</summary>
    public sealed record Sprite(string Colour, string Shape, double[] Cx, double[] Cy, double[] R, double[] Angle);

    public static float[] Render(string background, int frames, int height, int width, params Sprite[] sprites)
    {
        var bg = ClipMeasure.Palette[background];
        var rgb = new float[frames * height * width * 3];
        for (int f = 0; f < frames; f++)
        {
            var img = new double[height * width * 3];
            for (int i = 0; i < height * width; i++) (img[3 * i], img[3 * i + 1], img[3 * i + 2]) = (bg.R, bg.G, bg.B);
            foreach (var s in sprites)
            {
                var a = Coverage(s.Shape, height, width, s.Cx[f], s.Cy[f], s.R[f], s.Angle[f]);
                var c = ClipMeasure.Palette[s.Colour];
                for (int i = 0; i < height * width; i++)
                {
                    img[3 * i] = img[3 * i] * (1 - a[i]) + c.R * a[i];
                    img[3 * i + 1] = img[3 * i + 1] * (1 - a[i]) + c.G * a[i];
                    img[3 * i + 2] = img[3 * i + 2] * (1 - a[i]) + c.B * a[i];
                }
            }
            for (int i = 0; i < img.Length; i++) rgb[f * img.Length + i] = (float)img[i];
        }
        return rgb;
    }

    /// <summary>data.py <c>coverage</c>: the fraction of each pixel [H, W] inside the shape centred at (cx, cy).</summary>
    public static double[] Coverage(string shape, int height, int width, double cx, double cy, double r, double angle)
    {
        var output = new double[height * width];
        var polygon = shape == "circle" ? null : Polygon(shape, r, angle);
        double reach = 1.4 * r + 1;
        int y0 = Math.Max(0, (int)(cy - reach)), y1 = Math.Min(height, (int)Math.Ceiling(cy + reach));
        int x0 = Math.Max(0, (int)(cx - reach)), x1 = Math.Min(width, (int)Math.Ceiling(cx + reach));
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++)
            {
                int inside = 0;
                for (int sy = 0; sy < 4; sy++)
                    for (int sx = 0; sx < 4; sx++)
                    {
                        double px = x + (sx + 0.5) / 4 - cx, py = y + (sy + 0.5) / 4 - cy;
                        inside += (polygon is null ? px * px + py * py < r * r : Inside(polygon, px, py)) ? 1 : 0;
                    }
                output[y * width + x] = inside / 16.0;
            }
        return output;
    }

    /// <summary>An object standing still (turned by <paramref name="angle"/>).</summary>
    public static Sprite Still(string colour, string shape, int frames, double cx, double cy, double r, double angle = 0)
        => new(colour, shape, Enumerable.Repeat(cx, frames).ToArray(), Enumerable.Repeat(cy, frames).ToArray(),
            Enumerable.Repeat(r, frames).ToArray(), Enumerable.Repeat(angle, frames).ToArray());

    /// <summary>
    /// data.py <c>_track</c> on a square frame of side <paramref name="size"/> with its random choices at the middle
    /// of their ranges: a direction travels 0.375 of the side (÷√2 on a diagonal) centred in the room it has,
    /// growing and shrinking run between radii 0.06 and 0.22 of the side, bouncing falls to the floor and back
    /// twice, rotating turns 0.45 of the shape's symmetry period. <paramref name="travel"/> overrides the distance.
    /// </summary>
    public static Sprite Moving(string colour, string shape, string motion, int frames, int size, double r, double? travel = null)
    {
        var t = Enumerable.Range(0, frames).Select(f => f / (frames - 1.0)).ToArray();
        var still = Still(colour, shape, frames, 0.5 * size, 0.5 * size, r);
        if (ClipMeasure.Directions.TryGetValue(motion, out var way))
        {
            double distance = travel ?? 0.375 * size / (way.Dx != 0 && way.Dy != 0 ? Math.Sqrt(2) : 1);
            double margin = 1.3 * r, start = margin + 0.5 * (size - 2 * margin - distance);
            double[] Along(int d, double[] fixedAt) => d == 0 ? fixedAt
                : t.Select(u => d > 0 ? start + distance * u : size - (start + distance * u)).ToArray();
            return still with { Cx = Along(way.Dx, still.Cx), Cy = Along(way.Dy, still.Cy) };
        }
        return motion switch
        {
            "growing" => still with { R = t.Select(u => (0.06 + 0.16 * u) * size).ToArray() },
            "shrinking" => still with { R = t.Select(u => (0.22 - 0.16 * u) * size).ToArray() },
            "bouncing" => still with
            {
                Cy = t.Select(u => (size - 1.2 * r - 1) - (size - 1.2 * r - 1 - (1.3 * r + 1 + 0.45 * size) / 2) * Math.Abs(Math.Cos(2 * Math.PI * u))).ToArray(),
            },
            "rotating" => still with
            {
                Angle = t.Select(u => u * 0.45 * (shape switch { "triangle" => 120, "star" => 72, _ => 90 }) * Math.PI / 180).ToArray(),
            },
            _ => throw new ArgumentException($"unknown motion '{motion}'", nameof(motion)),
        };
    }

    /// <summary>data.py <c>draw_pair</c> with its random choices fixed: two small objects side by side, the first on
    /// the left, the gap between their centres growing (or shrinking) between 0.15 and 0.345 of the width, each way.</summary>
    public static Sprite[] Pair(string c1, string s1, string c2, string s2, string motion, int frames, int size)
    {
        var gap = Enumerable.Range(0, frames).Select(f => f / (frames - 1.0)).Select(u => motion == "moving apart" ? u : 1 - u)
            .Select(u => (0.15 + 0.195 * u) * size).ToArray();
        var a = Still(c1, s1, frames, 0, 0.45 * size, 0.115 * size);
        var b = Still(c2, s2, frames, 0, 0.55 * size, 0.115 * size);
        return [a with { Cx = gap.Select(g => 0.5 * size - g).ToArray() }, b with { Cx = gap.Select(g => 0.5 * size + g).ToArray() }];
    }

    private static (double X, double Y)[] Polygon(string shape, double r, double angle)
    {
        var (radius, n, inner, a0) = shape switch
        {
            "square" => (0.85 * r * Math.Sqrt(2), 4, 0.0, Math.PI / 4),
            "triangle" => (1.25 * r, 3, 0.0, -Math.PI / 2), // pointing up
            "star" => (1.35 * r, 5, 0.5, -Math.PI / 2),
            _ => throw new ArgumentException($"unknown shape '{shape}'", nameof(shape)),
        };
        var points = new List<(double X, double Y)>();
        for (int k = 0; k < n; k++)
        {
            double a = a0 + angle + 2 * Math.PI * k / n;
            points.Add((radius * Math.Cos(a), radius * Math.Sin(a)));
            if (inner > 0) points.Add((inner * radius * Math.Cos(a + Math.PI / n), inner * radius * Math.Sin(a + Math.PI / n)));
        }
        return points.ToArray();
    }

    /// <summary>data.py <c>_inside</c>: the even-odd crossing test.</summary>
    private static bool Inside((double X, double Y)[] polygon, double px, double py)
    {
        bool inside = false;
        for (int i = 0; i < polygon.Length; i++)
        {
            var (a, b) = (polygon[i], polygon[(i + 1) % polygon.Length]);
            if ((a.Y > py) != (b.Y > py) && px < (b.X - a.X) * (py - a.Y) / (b.Y - a.Y) + a.X) inside = !inside;
        }
        return inside;
    }
}

/// <summary>tests/EndToEnd/data-py-clips.txt: clips data.py drew and what its measure said of them (the file's header says how).</summary>
internal static class DataPyClips
{
    public sealed record Expected(string? Colour, string Background, string? Shape, string Motion, string Wanted, bool Matches,
        double Dx, double Dy, double AreaRatio, double YRange, double Turned, string Caption);

    public static IEnumerable<(Sora.Native.Video.VideoFrames Clip, Expected Expected)> Load()
    {
        var lines = File.ReadAllLines(Find()).Where(l => !l.StartsWith('#')).ToArray();
        Assert.True(lines.Length >= 48 && lines.Length % 2 == 0, "data-py-clips.txt holds fewer clips than it was written with");
        for (int i = 0; i < lines.Length; i += 2)
        {
            var c = lines[i].Split('\t');
            int frames = int.Parse(c[0]), height = int.Parse(c[1]), width = int.Parse(c[2]);
            string? Named(string s) => s == "-" ? null : s;
            double D(int k) => double.Parse(c[k], System.Globalization.CultureInfo.InvariantCulture);
            using var z = new System.IO.Compression.ZLibStream(new MemoryStream(Convert.FromBase64String(lines[i + 1])), System.IO.Compression.CompressionMode.Decompress);
            var bytes = new MemoryStream();
            z.CopyTo(bytes);
            var rgb = bytes.ToArray().Select(b => b / 255f).ToArray();
            yield return (new Sora.Native.Video.VideoFrames(frames, height, width, rgb),
                new Expected(Named(c[3]), c[4], Named(c[5]), c[6], c[7], bool.Parse(c[8]), D(9), D(10), D(11), D(12), D(13), c[14]));
        }
    }

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "EndToEnd", "data-py-clips.txt");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("tests/EndToEnd/data-py-clips.txt not found above " + AppContext.BaseDirectory);
    }
}
