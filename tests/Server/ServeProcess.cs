using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Sora.Tests.Server;

/// <summary>The built sora command serving as a child process on a free port, its log read as it comes.</summary>
public sealed partial class ServeProcess : IDisposable
{
    private readonly Process _process;

    private ServeProcess(Process process, LineLog log, string url)
    {
        _process = process;
        Log = log;
        Url = url;
        Http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(60) };
    }

    public string Url { get; }
    public LineLog Log { get; }
    public HttpClient Http { get; }

    /// <summary>Starts <c>sora serve --port 0 --device cpu</c> with <paramref name="args"/> and waits until it listens.</summary>
    public static async Task<ServeProcess> StartAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "sora.dll"), "serve", "--port", "0", "--device", "cpu" }.Concat(args))
            start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        var log = new LineLog();
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                listening.TrySetException(new InvalidOperationException("sora serve exited before listening: " + string.Join("\n", log.Lines)));
                return;
            }
            log.WriteLine(e.Data);
            if (Listening().Match(e.Data) is { Success: true } m) listening.TrySetResult(m.Groups[1].Value);
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        if (await Task.WhenAny(listening.Task, Task.Delay(TimeSpan.FromSeconds(60))) != listening.Task)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("sora serve did not start in 60 s: " + string.Join("\n", log.Lines));
        }
        try
        {
            return new ServeProcess(process, log, await listening.Task);
        }
        catch
        {
            process.Dispose();
            throw;
        }
    }

    /// <summary>Kills it outright (SIGKILL): no chance to put its jobs back in the queue.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>Stops it as a service manager would (SIGTERM) and waits for its exit code.</summary>
    public async Task<int> StopAsync()
    {
        if (!_process.HasExited) _ = SendSignal(_process.Id, 15);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _process.WaitForExitAsync(timeout.Token);
        return _process.ExitCode;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);

    [GeneratedRegex(@"listening on (http://\S+?),")]
    private static partial Regex Listening();

    public void Dispose()
    {
        Http.Dispose();
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
        _process.Dispose();
    }
}
