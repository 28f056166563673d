namespace Sora.Tests.EndToEnd;

/// <summary>
/// What a viewer sees in a generated clip of the default model's world (one coloured shape over a plain
/// background): the background is the median of the border pixels, the object is every pixel far from it; the
/// object's colour is its dominant one (the palette colour most of its pixels are nearest: a mean would let the
/// soft edge, blended with the background, pull a yellow object towards red on black), its motion the shift of
/// its centroid from the first quarter of the frames to the last.
/// </summary>
public sealed record ClipMeasure(string? ObjectColour, string BackgroundColour, double Dx, double Dy, double AreaRatio)
{
    /// <summary>The training data's colours (tools/train-default-model/data.py), in [0, 1].</summary>
    public static readonly IReadOnlyDictionary<string, (double R, double G, double B)> Palette = new Dictionary<string, (double, double, double)>
    {
        ["red"] = (0.86, 0.12, 0.12),
        ["green"] = (0.12, 0.70, 0.20),
        ["blue"] = (0.15, 0.30, 0.90),
        ["yellow"] = (0.95, 0.85, 0.10),
        ["white"] = (0.95, 0.95, 0.95),
        ["black"] = (0.05, 0.05, 0.05),
    };

    /// <summary>A pixel belongs to the object when its RGB distance from the background exceeds this.</summary>
    private const double ObjectDistance = 0.35;

    /// <summary>Centroid travel (pixels) below which the object counts as not moving.</summary>
    public double MinimumMove { get; init; } = 3.0;

    /// <summary>left, right, up, down by the larger centroid shift, "static", or "unknown" when the object is missing at either end.</summary>
    public string Direction => double.IsNaN(Dx) || double.IsNaN(Dy) ? "unknown"
        : Math.Abs(Dx) < MinimumMove && Math.Abs(Dy) < MinimumMove ? "static"
        : Math.Abs(Dx) >= Math.Abs(Dy) ? (Dx > 0 ? "right" : "left") : (Dy > 0 ? "down" : "up");

    public override string ToString()
        => $"object {ObjectColour ?? "none"} on {BackgroundColour}, centroid shift ({Dx:F1}, {Dy:F1}) px → {Direction}, area ×{AreaRatio:F2}";

    /// <summary>Measures rgb [frames, height, width, 3] in [0, 1].</summary>
    public static ClipMeasure Of(float[] rgb, int frames, int height, int width)
    {
        if (rgb.Length != frames * height * width * 3) throw new ArgumentException("rgb length does not match the clip size", nameof(rgb));
        (double, double, double) Pixel(int f, int y, int x)
        {
            int p = ((f * height + y) * width + x) * 3;
            return (rgb[p], rgb[p + 1], rgb[p + 2]);
        }

        var border = new List<(double R, double G, double B)>();
        for (int f = 0; f < frames; f++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    if (y == 0 || x == 0 || y == height - 1 || x == width - 1) border.Add(Pixel(f, y, x));
        var background = (Median(border.Select(p => p.R)), Median(border.Select(p => p.G)), Median(border.Select(p => p.B)));

        var votes = new Dictionary<string, long>();
        var centroids = new (double X, double Y)?[frames];
        var areas = new long[frames];
        for (int f = 0; f < frames; f++)
        {
            double cx = 0, cy = 0;
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    var p = Pixel(f, y, x);
                    if (Distance(p, background) <= ObjectDistance) continue;
                    string nearest = Nearest(p);
                    votes[nearest] = votes.GetValueOrDefault(nearest) + 1;
                    areas[f]++;
                    cx += x;
                    cy += y;
                }
            if (areas[f] > 0) centroids[f] = (cx / areas[f], cy / areas[f]);
        }
        string backgroundName = Nearest(background);
        if (votes.Count == 0) return new ClipMeasure(null, backgroundName, 0, 0, 1);

        int quarter = Math.Max(1, frames / 4);
        var first = MeanCentroid(centroids.Take(quarter));
        var last = MeanCentroid(centroids.Skip(frames - quarter));
        double areaFirst = areas.Take(quarter).Average() + 1, areaLast = areas.Skip(frames - quarter).Average() + 1;
        string dominant = Palette.Keys.MaxBy(votes.GetValueOrDefault)!; // ties: the first in palette order
        return new ClipMeasure(dominant, backgroundName,
            last.X - first.X, last.Y - first.Y, areaLast / areaFirst);
    }

    private static (double X, double Y) MeanCentroid(IEnumerable<(double X, double Y)?> centroids)
    {
        var present = centroids.Where(c => c is not null).Select(c => c!.Value).ToList();
        return present.Count == 0 ? (double.NaN, double.NaN) : (present.Average(c => c.X), present.Average(c => c.Y));
    }

    private static string Nearest((double, double, double) colour)
        => Palette.MinBy(p => Distance(p.Value, colour)).Key;

    private static double Distance((double, double, double) a, (double, double, double) b)
    {
        double r = a.Item1 - b.Item1, g = a.Item2 - b.Item2, bl = a.Item3 - b.Item3;
        return Math.Sqrt(r * r + g * g + bl * bl);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }
}
