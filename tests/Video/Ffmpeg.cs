using System.Diagnostics;
using Xunit;

namespace Sora.Tests.Video;

/// <summary>The ffmpeg/ffprobe command-line tools as an independent decoder for the files our writers produce.</summary>
public static class Ffmpeg
{
    public static string? FfmpegPath { get; } = FindOnPath("ffmpeg");
    public static string? FfprobePath { get; } = FindOnPath("ffprobe");
    /// <summary>swscale flags for a YUV → RGB conversion exact to the rounding (the default is off by up to 3 levels).</summary>
    public const string AccurateScaling = "accurate_rnd+full_chroma_int+bitexact";

    public static bool Available => FfmpegPath is not null && FfprobePath is not null;

    private static string? FindOnPath(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Decodes every frame of <paramref name="input"/> to interleaved 8-bit RGB, concatenated.</summary>
    public static byte[] DecodeRgb24(params string[] inputArgs)
    {
        var args = new List<string> { "-v", "error", "-nostdin" };
        args.AddRange(inputArgs);
        args.AddRange(["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
        return Run(FfmpegPath!, args);
    }

    /// <summary>Frame count (decoded, not from headers), width and height of the first video stream.</summary>
    public static (int Frames, int Width, int Height) Probe(params string[] inputArgs)
    {
        var args = new List<string> { "-v", "error", "-count_frames", "-select_streams", "v:0",
            "-show_entries", "stream=nb_read_frames,width,height", "-of", "default=noprint_wrappers=1" };
        args.AddRange(inputArgs);
        var text = System.Text.Encoding.ASCII.GetString(Run(FfprobePath!, args));
        var kv = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        return (int.Parse(kv["nb_read_frames"]), int.Parse(kv["width"]), int.Parse(kv["height"]));
    }

    private static byte[] Run(string exe, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        using var ms = new MemoryStream();
        p.StandardOutput.BaseStream.CopyTo(ms);
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{Path.GetFileName(exe)} {string.Join(' ', psi.ArgumentList)} failed ({p.ExitCode}): {stderr.Result}");
        return ms.ToArray();
    }
}

/// <summary>A test that needs ffmpeg and ffprobe; skipped (not passed) where they are not installed.</summary>
public sealed class FfmpegFactAttribute : FactAttribute
{
    public FfmpegFactAttribute()
    {
        if (!Ffmpeg.Available) Skip = "ffmpeg/ffprobe not on PATH";
    }
}
