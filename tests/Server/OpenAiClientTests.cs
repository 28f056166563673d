using System.Diagnostics;
using System.Text.Json;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>Node and npm on PATH, which the real-client test needs; otherwise it is skipped, saying so.</summary>
public sealed class NodeFactAttribute : FactAttribute
{
    public NodeFactAttribute()
    {
        if (OpenAiClientTests.FindOnPath("node") is null || OpenAiClientTests.FindOnPath("npm") is null)
            Skip = "node and npm are not on PATH: the official openai npm client cannot be installed and run";
    }
}

/// <summary>
/// A client no one here wrote: the official <c>openai</c> npm package (pinned in tests/Server/client/package-lock.json,
/// installed with npm ci) runs tests/Server/client/videos.mjs against the server on loopback.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class OpenAiClientTests(ServedModel model)
{
    private const string ApiKey = "sk-sora-client-test";

    [NodeFact]
    public async Task The_official_openai_npm_client_creates_polls_downloads_lists_remixes_edits_extends_and_deletes()
    {
        string client = ClientFolder();
        if (!File.Exists(Path.Combine(client, "node_modules", "openai", "package.json")))
        {
            var (code, output) = await RunAsync(client, FindOnPath("npm")!, ["ci", "--no-audit", "--no-fund"], [], TimeSpan.FromMinutes(3));
            Assert.True(code == 0, $"npm ci failed ({code}): {output}");
        }
        var server = await TestServer.StartAsync(model.Engine, apiKey: ApiKey);
        try
        {
            var (code, output) = await RunAsync(client, FindOnPath("node")!, ["videos.mjs"],
                [("SORA_BASE_URL", server.Url + "/v1"), ("SORA_API_KEY", ApiKey)], TimeSpan.FromMinutes(2));
            Assert.True(code == 0, $"videos.mjs failed ({code}): {output}\nserver log:\n{string.Join("\n", server.Log.Lines)}");
            var seen = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement;
            Assert.Equal(6, seen.GetProperty("listed").GetInt32());
            Assert.Equal(401, seen.GetProperty("wrong_key").GetProperty("status").GetInt32());
            Assert.Equal("invalid_api_key", seen.GetProperty("wrong_key").GetProperty("code").GetString());
        }
        finally
        {
            await server.DisposeAndDeleteStoreAsync();
        }
    }

    /// <summary>tests/Server/client in the source tree, found from the test binaries' folder.</summary>
    private static string ClientFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "Server", "client");
            if (File.Exists(Path.Combine(candidate, "package-lock.json"))) return candidate;
        }
        throw new DirectoryNotFoundException($"tests/Server/client/package-lock.json not found above {AppContext.BaseDirectory}");
    }

    public static string? FindOnPath(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    private static async Task<(int Code, string Output)> RunAsync(string dir, string exe, string[] args, (string, string)[] env, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(exe) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (k, v) in env) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"timed out after {timeout.TotalSeconds} s\n{await stdout}\n{await stderr}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }
}
