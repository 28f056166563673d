using Sora.Native.Video;

namespace Sora.Tests.EndToEnd;

/// <summary>
/// What a viewer sees in a generated clip of the default model's world (one coloured shape over a plain
/// background), measured exactly as tools/train-default-model/data.py's <c>measure</c>, <c>motion_of</c> and
/// <c>motion_matches</c> do: the background is the median of the border pixels, the object every pixel farther than
/// 0.35 from it; the object's colour is its dominant one (the palette colour most of its pixels are nearest: a mean
/// would let the soft edge pull it off), its motion the shift of its centroid from the first quarter of the frames
/// to the last, its shape the majority of the per-frame <see cref="ShapeOf"/> readings.
/// </summary>
public sealed record ClipMeasure(string? ObjectColour, string BackgroundColour, double Dx, double Dy, double AreaRatio)
{
    /// <summary>The training data's colours (data.py COLORS), in [0, 1]; ties go to the first in this order.</summary>
    public static readonly IReadOnlyList<(string Name, double R, double G, double B)> Colours =
    [
        ("red", 0.86, 0.12, 0.12), ("green", 0.12, 0.70, 0.20), ("blue", 0.15, 0.30, 0.90),
        ("yellow", 0.95, 0.85, 0.10), ("white", 0.95, 0.95, 0.95), ("black", 0.05, 0.05, 0.05),
        ("gray", 0.50, 0.50, 0.50), ("orange", 1.00, 0.50, 0.00), ("purple", 0.50, 0.10, 0.65),
        ("cyan", 0.10, 0.85, 0.90), ("pink", 1.00, 0.55, 0.75), ("brown", 0.45, 0.25, 0.08),
    ];

    public static readonly IReadOnlyDictionary<string, (double R, double G, double B)> Palette =
        Colours.ToDictionary(c => c.Name, c => (c.R, c.G, c.B));

    /// <summary>data.py SHAPES; a tie in the per-frame majority goes to the first in this order.</summary>
    public static readonly IReadOnlyList<string> Shapes = ["circle", "square", "triangle", "star"];

    /// <summary>data.py DIRECTIONS: the four straight ways and the four diagonals, as (dx, dy) signs.</summary>
    public static readonly IReadOnlyDictionary<string, (int Dx, int Dy)> Directions = new Dictionary<string, (int, int)>
    {
        ["left"] = (-1, 0), ["right"] = (1, 0), ["up"] = (0, -1), ["down"] = (0, 1),
        ["up and left"] = (-1, -1), ["up and right"] = (1, -1), ["down and left"] = (-1, 1), ["down and right"] = (1, 1),
    };

    /// <summary>A pixel belongs to the object when its RGB distance from the background exceeds this (float32, as numpy).</summary>
    private const float ObjectDistance = 0.35f;

    /// <summary>circle, square, triangle or star by the majority of frames that show one; null when none does.</summary>
    public string? Shape { get; init; }

    /// <summary>How far the centroid's height ranges over the frames that show the object (pixels).</summary>
    public double YRange { get; init; }

    /// <summary>1 − IoU of the first and last frames' object masks.</summary>
    public double Turned { get; init; }

    /// <summary>Whether the clip's world has diagonal motions (data.py's v2 does; the v1 model only moved straight).</summary>
    public bool Diagonals { get; init; } = true;

    /// <summary>Centroid travel (pixels) below which the object counts as not moving; <c>Of</c> sets 0.1 × height, as evaluate.py.</summary>
    public double MinimumMove { get; init; } = 3.0;

    /// <summary>
    /// data.py <c>motion_of</c>: a straight way or a diagonal ("up and left") by the centroid shift, else growing,
    /// shrinking or static by the area ratio; "unknown" when the object is missing from the first or last quarter
    /// (data.py would compare NaNs there and answer a direction).
    /// </summary>
    public string Motion
    {
        get
        {
            if (double.IsNaN(Dx) || double.IsNaN(Dy)) return "unknown";
            double ax = Math.Abs(Dx), ay = Math.Abs(Dy), most = Math.Max(ax, ay);
            if (most < MinimumMove) return AreaRatio > 1.5 ? "growing" : AreaRatio < 1 / 1.5 ? "shrinking" : "static";
            if (Diagonals && Math.Min(ax, ay) > 0.5 * most) return (Dy < 0 ? "up" : "down") + " and " + (Dx < 0 ? "left" : "right");
            return ax >= ay ? (Dx > 0 ? "right" : "left") : (Dy > 0 ? "down" : "up");
        }
    }

    /// <summary>data.py <c>motion_matches</c>: whether the clip shows the prompted motion.</summary>
    public bool Shows(string motion) => motion switch
    {
        // down and back up: the centroid's height spans a range but ends near where it began
        "bouncing" => YRange >= 2 * MinimumMove && Math.Abs(Dy) < YRange / 2,
        // stays in place while its outline turns
        "rotating" => Motion == "static" && Turned > 0.2,
        "growing" or "shrinking" => Motion == motion,
        _ when Directions.ContainsKey(motion) => Motion == motion,
        _ => throw new ArgumentException($"unknown motion '{motion}'", nameof(motion)),
    };

    public override string ToString()
        => $"{ObjectColour ?? "no"} {Shape ?? "shapeless"} object on {BackgroundColour}, centroid shift ({Dx:F1}, {Dy:F1}) px, "
           + $"area ×{AreaRatio:F2}, y range {YRange:F1}, turned {Turned:F2} → {Motion}";

    public static ClipMeasure Of(VideoFrames clip, IEnumerable<string>? colours = null) => Of(clip.Rgb, clip.Frames, clip.Height, clip.Width, colours);

    /// <summary>
    /// Measures rgb [frames, height, width, 3] in [0, 1] (data.py <c>measure</c>). <paramref name="colours"/>: the
    /// palette colours a model knows, to name the object and background among (null: all of <see cref="Colours"/>).
    /// </summary>
    public static ClipMeasure Of(float[] rgb, int frames, int height, int width, IEnumerable<string>? colours = null)
    {
        var known = Known(colours);
        if (rgb.Length != frames * height * width * 3) throw new ArgumentException("rgb length does not match the clip size", nameof(rgb));
        int plane = height * width;
        var bg = BackgroundOf(rgb, frames, height, width);
        var mask = ObjectMask(rgb, frames, height, width, bg);
        var votes = new long[Colours.Count];
        var areas = new double[frames];
        var centroids = new (double X, double Y)[frames];
        var shapes = new string?[frames];
        for (int f = 0; f < frames; f++)
        {
            double sx = 0, sy = 0;
            for (int i = 0; i < plane; i++)
            {
                if (!mask[f * plane + i]) continue;
                int p = (f * plane + i) * 3;
                votes[Nearest(rgb[p], rgb[p + 1], rgb[p + 2], known)]++;
                areas[f]++;
                sx += i % width;
                sy += i / width;
            }
            centroids[f] = areas[f] > 0 ? (sx / areas[f], sy / areas[f]) : (double.NaN, double.NaN);
            shapes[f] = ShapeOf(mask.AsSpan(f * plane, plane), height, width);
        }
        string background = Colours[Nearest(bg.R, bg.G, bg.B, known)].Name;
        if (votes.Sum() == 0) return new ClipMeasure(null, background, 0, 0, 1) { MinimumMove = 0.1 * height };

        int k = Math.Max(1, frames / 4);
        var (first, last) = (MeanCentroid(centroids[..k]), MeanCentroid(centroids[^k..]));
        var ys = centroids.Where(c => !double.IsNaN(c.Y)).Select(c => c.Y).ToList();
        int both = 0, either = 0;
        for (int i = 0; i < plane; i++)
        {
            bool a = mask[i], b = mask[(frames - 1) * plane + i];
            both += a && b ? 1 : 0;
            either += a || b ? 1 : 0;
        }
        var named = shapes.OfType<string>().ToList();
        return new ClipMeasure(Colours[Array.IndexOf(votes, votes.Max())].Name, background,
            last.X - first.X, last.Y - first.Y, (areas[^k..].Average() + 1) / (areas[..k].Average() + 1))
        {
            Shape = named.Count == 0 ? null : Shapes.MaxBy(s => named.Count(n => n == s)), // ties: the first in Shapes
            YRange = ys.Max() - ys.Min(),
            Turned = 1 - (double)both / Math.Max(either, 1),
            MinimumMove = 0.1 * height,
        };
    }

    /// <summary>data.py <c>background_of</c>: the median of the border pixels over all frames (top and bottom rows,
    /// then left and right columns, so the corners count twice), per channel, in float32 as numpy.</summary>
    public static (float R, float G, float B) BackgroundOf(float[] rgb, int frames, int height, int width)
    {
        var channels = new[] { new List<float>(), new List<float>(), new List<float>() };
        void Add(int f, int y, int x)
        {
            for (int c = 0; c < 3; c++) channels[c].Add(rgb[((f * height + y) * width + x) * 3 + c]);
        }
        for (int f = 0; f < frames; f++)
            for (int x = 0; x < width; x++) { Add(f, 0, x); Add(f, height - 1, x); }
        for (int f = 0; f < frames; f++)
            for (int y = 0; y < height; y++) { Add(f, y, 0); Add(f, y, width - 1); }
        float Median(List<float> v)
        {
            v.Sort();
            int n = v.Count;
            return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2f;
        }
        return (Median(channels[0]), Median(channels[1]), Median(channels[2]));
    }

    /// <summary>data.py <c>object_mask</c>: [frames, height, width], true where a pixel is farther than 0.35 from the background.</summary>
    public static bool[] ObjectMask(float[] rgb, int frames, int height, int width, (float R, float G, float B) background)
    {
        var mask = new bool[frames * height * width];
        for (int i = 0; i < mask.Length; i++)
        {
            float r = rgb[3 * i] - background.R, g = rgb[3 * i + 1] - background.G, b = rgb[3 * i + 2] - background.B;
            mask[i] = MathF.Sqrt(r * r + g * g + b * b) > ObjectDistance;
        }
        return mask;
    }

    /// <summary>The clip's object mask against its own background (<see cref="BackgroundOf"/>).</summary>
    public static bool[] ObjectMask(VideoFrames clip)
        => ObjectMask(clip.Rgb, clip.Frames, clip.Height, clip.Width, BackgroundOf(clip.Rgb, clip.Frames, clip.Height, clip.Width));

    /// <summary>Intersection over union of two masks of the same size (0 when both are empty).</summary>
    public static double IoU(ReadOnlySpan<bool> a, ReadOnlySpan<bool> b)
    {
        int both = 0, either = 0;
        for (int i = 0; i < a.Length; i++)
        {
            both += a[i] && b[i] ? 1 : 0;
            either += a[i] || b[i] ? 1 : 0;
        }
        return (double)both / Math.Max(either, 1);
    }

    /// <summary>
    /// data.py <c>shape_of</c>, one frame's mask [height, width]: of its largest 4-connected component (null under
    /// 12 pixels), a star is the one far from convex (area / convex hull of the pixels' corners &lt; 0.8); of the
    /// convex ones, compactness = area / (π (farthest pixel centre from the centroid + 0.5)²) is about 1 for a
    /// circle, 2/π for a square and 0.41 for a triangle (cut at 0.8 and 0.52).
    /// </summary>
    public static string? ShapeOf(ReadOnlySpan<bool> mask, int height, int width)
    {
        var pixels = LargestComponent(mask, height, width);
        int area = pixels.Count;
        if (area < 12) return null;
        var corners = pixels.SelectMany(p => new[] { (p.X, p.Y), (p.X, p.Y + 1), (p.X + 1, p.Y), (p.X + 1, p.Y + 1) });
        if (area / Math.Max(HullArea(corners), 1.0) < 0.8) return "star";
        double mx = pixels.Average(p => p.X), my = pixels.Average(p => p.Y);
        double reach = Math.Sqrt(pixels.Max(p => (p.X - mx) * (p.X - mx) + (p.Y - my) * (p.Y - my))) + 0.5;
        double compact = area / (Math.PI * reach * reach);
        return compact > 0.8 ? "circle" : compact > 0.52 ? "square" : "triangle";
    }

    /// <summary>
    /// evaluate.py <c>judge_pair</c>'s reading of a two-object clip: the dominant colour of the object pixels in the
    /// left and in the right half, the background, and how much the object columns' horizontal spread grows from
    /// the first quarter of the frames to the last (pixels; "moving apart" wants more than 0.1 × width).
    /// </summary>
    public static (string? Left, string? Right, string Background, double GapChange) PairOf(VideoFrames clip, IEnumerable<string>? colours = null)
    {
        var known = Known(colours);
        var (frames, height, width, rgb) = (clip.Frames, clip.Height, clip.Width, clip.Rgb);
        var bg = BackgroundOf(rgb, frames, height, width);
        var mask = ObjectMask(rgb, frames, height, width, bg);
        var votes = new[] { new long[Colours.Count], new long[Colours.Count] };
        var spread = new double[frames];
        for (int f = 0; f < frames; f++)
        {
            int lo = width, hi = -1;
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    int i = (f * height + y) * width + x;
                    if (!mask[i]) continue;
                    votes[x < width / 2 ? 0 : 1][Nearest(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], known)]++;
                    (lo, hi) = (Math.Min(lo, x), Math.Max(hi, x));
                }
            spread[f] = hi < 0 ? 0 : hi - lo;
        }
        string? Dominant(long[] v) => v.Sum() == 0 ? null : Colours[Array.IndexOf(v, v.Max())].Name;
        int k = Math.Max(1, frames / 4);
        return (Dominant(votes[0]), Dominant(votes[1]), Colours[Nearest(bg.R, bg.G, bg.B, known)].Name, spread[^k..].Average() - spread[..k].Average());
    }

    /// <summary>data.py <c>largest_component</c>: the largest 4-connected region (ties: the first met scanning rows).</summary>
    private static List<(int X, int Y)> LargestComponent(ReadOnlySpan<bool> mask, int height, int width)
    {
        var seen = new bool[mask.Length];
        var best = new List<(int X, int Y)>();
        var stack = new Stack<int>();
        for (int start = 0; start < mask.Length; start++)
        {
            if (!mask[start] || seen[start]) continue;
            var component = new List<(int X, int Y)>();
            seen[start] = true;
            stack.Push(start);
            while (stack.Count > 0)
            {
                int i = stack.Pop(), x = i % width, y = i / width;
                component.Add((x, y));
                foreach (var (nx, ny) in new[] { (x, y + 1), (x, y - 1), (x + 1, y), (x - 1, y) })
                {
                    int n = ny * width + nx;
                    if (nx < 0 || ny < 0 || nx >= width || ny >= height || !mask[n] || seen[n]) continue;
                    seen[n] = true;
                    stack.Push(n);
                }
            }
            if (component.Count > best.Count) best = component;
        }
        return best;
    }

    /// <summary>data.py <c>hull_area</c>: the area of the convex hull of integer points (monotone chain).</summary>
    private static double HullArea(IEnumerable<(int X, int Y)> points)
    {
        var pts = points.Distinct().OrderBy(p => p.X).ThenBy(p => p.Y).ToList();
        if (pts.Count < 3) return 0;
        static long Cross((int X, int Y) o, (int X, int Y) a, (int X, int Y) b)
            => (long)(a.X - o.X) * (b.Y - o.Y) - (long)(a.Y - o.Y) * (b.X - o.X);
        List<(int X, int Y)> Chain(IEnumerable<(int X, int Y)> ordered)
        {
            var chain = new List<(int X, int Y)>();
            foreach (var p in ordered)
            {
                while (chain.Count >= 2 && Cross(chain[^2], chain[^1], p) <= 0) chain.RemoveAt(chain.Count - 1);
                chain.Add(p);
            }
            chain.RemoveAt(chain.Count - 1);
            return chain;
        }
        var hull = Chain(pts).Concat(Chain(Enumerable.Reverse(pts))).ToList();
        long twice = 0;
        for (int i = 0; i < hull.Count; i++)
        {
            var (a, b) = (hull[i], hull[(i + 1) % hull.Count]);
            twice += (long)a.X * b.Y - (long)b.X * a.Y;
        }
        return Math.Abs(twice) / 2.0;
    }

    private static (double X, double Y) MeanCentroid(IEnumerable<(double X, double Y)> centroids)
    {
        var present = centroids.Where(c => !double.IsNaN(c.X)).ToList();
        return present.Count == 0 ? (double.NaN, double.NaN) : (present.Average(c => c.X), present.Average(c => c.Y));
    }

    private static bool[] Known(IEnumerable<string>? colours)
    {
        var names = colours?.ToHashSet();
        if (names is not null && names.Except(Palette.Keys).FirstOrDefault() is { } unknown) throw new ArgumentException($"'{unknown}' is not a palette colour", nameof(colours));
        return Colours.Select(c => names is null || names.Contains(c.Name)).ToArray();
    }

    /// <summary>The index of the known palette colour nearest this one (data.py <c>nearest_colour</c>; ties: the first).</summary>
    private static int Nearest(double r, double g, double b, bool[] known)
    {
        int best = 0;
        double bestDistance = double.MaxValue;
        for (int i = 0; i < Colours.Count; i++)
        {
            if (!known[i]) continue;
            var c = Colours[i];
            double d = (r - c.R) * (r - c.R) + (g - c.G) * (g - c.G) + (b - c.B) * (b - c.B);
            if (d < bestDistance) (best, bestDistance) = (i, d);
        }
        return best;
    }
}
