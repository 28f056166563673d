using System.Globalization;

namespace Sora.Cli.Serve;

/// <summary>The server's log: whole lines, each stamped with UTC time, safe to write from any thread.</summary>
public sealed class ServerLog(TextWriter writer)
{
    private readonly Lock _gate = new();

    public void Line(string message)
    {
        string stamp = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
        lock (_gate)
        {
            writer.WriteLine($"{stamp} sora serve: {message}");
            writer.Flush();
        }
    }

    /// <summary>One line per job per state change: "video_… queued (…)", "video_… completed in 1.2 s".</summary>
    public void Job(string id, string state, string? detail = null) => Line(detail is null ? $"{id} {state}" : $"{id} {state} ({detail})");
}
