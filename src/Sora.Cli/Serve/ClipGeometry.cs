using System.Globalization;

namespace Sora.Cli.Serve;

/// <summary>
/// How the API's <c>seconds</c> and <c>size</c> map onto what the model makes: frames = 4k+1 at its frame rate with
/// 4k nearest to seconds·fps (so reported seconds = (frames − 1)/fps: Wan2.1's 81 frames at 16 fps are "5"), and
/// width and height each rounded to the nearest multiple the model takes (at least one multiple).
/// </summary>
public sealed record ClipGeometry(int Fps, int FrameStep, int SizeMultiple, int DefaultFrames, int DefaultWidth, int DefaultHeight)
{
    /// <summary>The 4k+1 frames nearest to <paramref name="seconds"/> (at least 1 + FrameStep).</summary>
    public int FramesFor(double seconds)
    {
        double steps = Math.Round(seconds * Fps / FrameStep, MidpointRounding.AwayFromZero);
        return (int)Math.Max(1, Math.Min(steps, int.MaxValue / FrameStep - 1)) * FrameStep + 1;
    }

    /// <summary>(frames − 1)/fps, as the API's string ("4", "1.5").</summary>
    public string SecondsFor(int frames) => ((frames - 1) / (double)Fps).ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>The nearest width and height the model takes.</summary>
    public (int Width, int Height) SizeFor(int width, int height) => (Nearest(width), Nearest(height));

    public static string SizeString(int width, int height) => $"{width}x{height}";

    private int Nearest(int pixels) => (int)Math.Max(1, Math.Round(pixels / (double)SizeMultiple, MidpointRounding.AwayFromZero)) * SizeMultiple;
}
