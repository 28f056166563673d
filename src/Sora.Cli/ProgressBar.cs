using Sora.Native.Pipeline;

namespace Sora.Cli;

/// <summary>
/// Denoising progress on stderr: a bar, step count, rate and time left. Redraws one line on a terminal;
/// writes a line per step when stderr is redirected (logs stay readable). Reports arrive on the calling thread.
/// </summary>
public sealed class ProgressBar(TextWriter err, bool redraw) : IProgress<StepProgress>
{
    private const int Width = 30;

    public static ProgressBar For(TextWriter err)
        => new(err, ReferenceEquals(err, Console.Error) && !Console.IsErrorRedirected);

    public void Report(StepProgress p)
    {
        string line = Format(p);
        if (redraw)
        {
            err.Write("\r" + line);
            if (p.Step >= p.TotalSteps) err.WriteLine();
        }
        else
        {
            err.WriteLine(line);
        }
        err.Flush();
    }

    public static string Format(StepProgress p)
    {
        int filled = p.TotalSteps == 0 ? Width : (int)((long)Width * p.Step / p.TotalSteps);
        string bar = new string('#', filled) + new string('.', Width - filled);
        double seconds = p.Elapsed.TotalSeconds;
        string rate = p.Step == 0 || seconds <= 0 ? "-- it/s"
            : p.Step / seconds >= 1 ? $"{p.Step / seconds:0.00} it/s" : $"{seconds / p.Step:0.00} s/it";
        string eta = p.Step == 0 ? "--:--" : Clock(TimeSpan.FromSeconds(seconds / p.Step * (p.TotalSteps - p.Step)));
        return $"[{bar}] step {p.Step}/{p.TotalSteps}  {rate}  elapsed {Clock(p.Elapsed)}  ETA {eta}";
    }

    private static string Clock(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}:{t:mm\\:ss}" : $"{t:mm\\:ss}";
}
