using System.Diagnostics;

namespace Sora.Native.Video;

/// <summary>
/// Reads .mp4 and other containers through the ffmpeg program (a plain process, so the library needs no ffmpeg
/// package): every frame decoded as it is stored (no frame-rate conversion), converted to 8-bit RGB and piped out
/// as a stream of binary PPM images, whose headers carry each frame's size.
/// </summary>
public static class FfmpegReader
{
    public static readonly string[] Extensions = [".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"];

    /// <summary>The ffmpeg executable on PATH, or null.</summary>
    public static string? FindFfmpeg()
    {
        string name = OperatingSystem.IsWindows() ? "ffmpeg.exe" : "ffmpeg";
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    public static VideoFrames Read(string path)
    {
        if (!File.Exists(path)) throw new VideoInputException(path, "no such file");
        string ffmpeg = FindFfmpeg()
            ?? throw new VideoInputException(path, $"reading {Path.GetExtension(path)} needs ffmpeg on PATH; give a folder of PNG frames, a .y4m or a .gif instead");

        var psi = new ProcessStartInfo(ffmpeg)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-v", "error", "-nostdin", "-i", "file:" + Path.GetFullPath(path), "-map", "0:v:0", "-fps_mode", "passthrough",
                     "-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "-" })
            psi.ArgumentList.Add(a);

        using var process = Start(path, psi);
        process.StandardInput.Close();
        var stderr = process.StandardError.ReadToEndAsync();
        VideoFrames? video = null;
        Exception? failure = null;
        try
        {
            video = ReadPpmStream(path, process.StandardOutput.BaseStream);
        }
        catch (Exception e) when (e is VideoInputException or IOException)
        {
            failure = e;
        }
        // A refused stream (too large, inconsistent) leaves ffmpeg writing into a pipe nobody reads.
        bool killed = failure is not null && !process.HasExited;
        if (killed) process.Kill(entireProcessTree: true);
        process.WaitForExit();
        if (!killed && process.ExitCode != 0)
        {
            // ffmpeg's own last line says more than an empty stream would (no such codec, invalid data, ...).
            string message = stderr.Result.Trim().Split('\n').LastOrDefault()?.Trim() ?? "";
            throw new VideoInputException(path, $"ffmpeg could not decode the file (exit code {process.ExitCode}: {message})");
        }
        return failure switch
        {
            null => video!,
            VideoInputException e => throw e,
            _ => throw new VideoInputException(path, $"cannot read ffmpeg's output ({failure.Message})", failure),
        };
    }

    private static Process Start(string path, ProcessStartInfo psi)
    {
        try
        {
            return Process.Start(psi) ?? throw new VideoInputException(path, $"could not start {psi.FileName}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new VideoInputException(path, $"could not start {psi.FileName} ({e.Message})", e);
        }
    }

    /// <summary>Concatenated P6 images of one size with maxval 255, as ffmpeg's ppm encoder writes them.</summary>
    private static VideoFrames ReadPpmStream(string path, Stream pipe)
    {
        var frames = new List<byte[]>();
        int width = 0, height = 0;
        var input = new BufferedStream(pipe, 1 << 16);
        while (true)
        {
            int first = input.ReadByte();
            if (first < 0) break;
            if (first != 'P' || input.ReadByte() != '6') throw new VideoInputException(path, "ffmpeg's output is not a PPM stream");
            int w = HeaderNumber(path, input), h = HeaderNumber(path, input), maxval = HeaderNumber(path, input);
            if (maxval != 255) throw new VideoInputException(path, $"ffmpeg wrote {maxval + 1}-level samples, expected 8-bit");
            if (frames.Count == 0)
            {
                VideoInput.CheckClipSize(path, 1, h, w);
                (width, height) = (w, h);
            }
            else if (w != width || h != height)
                throw new VideoInputException(path, $"frame {frames.Count} is {w}x{h} but frame 0 is {width}x{height}; every frame of a clip must have one size");
            VideoInput.CheckClipSize(path, frames.Count + 1, height, width);
            var rgb = new byte[w * h * 3];
            try { input.ReadExactly(rgb); }
            catch (EndOfStreamException) { throw new VideoInputException(path, $"ffmpeg's frame {frames.Count} is truncated"); }
            frames.Add(rgb);
        }
        if (frames.Count == 0) throw new VideoInputException(path, "ffmpeg decoded no video frames");

        var values = new float[(long)frames.Count * frames[0].Length];
        for (int f = 0; f < frames.Count; f++)
        {
            var dst = values.AsSpan(f * frames[0].Length, frames[0].Length);
            for (int i = 0; i < dst.Length; i++) dst[i] = frames[f][i] / 255f;
        }
        return new VideoFrames(frames.Count, height, width, values);
    }

    /// <summary>Whitespace, then a decimal number of at most 9 digits; consumes the one whitespace byte after it.</summary>
    private static int HeaderNumber(string path, Stream s)
    {
        int b;
        do b = s.ReadByte(); while (b is ' ' or '\n' or '\r' or '\t');
        int value = 0, digits = 0;
        while (b is >= '0' and <= '9' && digits < 9)
        {
            value = value * 10 + (b - '0');
            digits++;
            b = s.ReadByte();
        }
        if (digits == 0 || b is not (' ' or '\n' or '\r' or '\t'))
            throw new VideoInputException(path, "ffmpeg's output has a malformed PPM header");
        return value;
    }
}
