using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Sora.Cli;
using Sora.Cli.Serve;
using Sora.Tests.Cli;
using Xunit;

namespace Sora.Tests.Server;

/// <summary><c>sora serve</c> as a command: its arguments, SORA_API_KEY, and a clean stop on Ctrl+C.</summary>
[Collection(ServerCollection.Name)]
public sealed class ServeCommandTests(ServedModel model)
{
    [Theory]
    [InlineData("--port", "70000", "--port")]
    [InlineData("--port", "-1", "--port")]
    [InlineData("--host", "example.com", "--host")]
    [InlineData("--max-queue", "0", "--max-queue")]
    [InlineData("--device", "quantum", "--device")]
    [InlineData("--model", "/no/such/model", "--model")]
    [InlineData("--api-key", "", "--api-key")]
    [InlineData("--files", "/tmp/shared", "--files")]
    [InlineData("--store", "postgres://u:pw@db:notaport/sora", "--store")]
    [InlineData("--store", "postgres://u:pw@db/sora?no_such_option=1", "no_such_option")]
    [InlineData("--runner-lease", "0", "--runner-lease")]
    public void Bad_arguments_are_one_usage_error_line(string option, string value, string named)
    {
        var result = CliRunner.Run("serve", option, value);
        Assert.Equal(Program.UsageExitCode, result.Code);
        Assert.Contains(named, result.SingleError());
    }

    [Fact]
    public async Task A_port_in_use_is_one_error_line_naming_it()
    {
        var server = await TestServer.StartAsync(model.Engine);
        try
        {
            string port = new Uri(server.Url).Port.ToString();
            string store = TestServer.NewStoreDir();
            var result = CliRunner.Run("serve", "--port", port, "--store", store, "--device", "cpu");
            Assert.Equal(Program.ErrorExitCode, result.Code);
            Assert.Contains($"--port {port}", result.ErrLines.Last());
            Assert.StartsWith("sora: error: ", result.ErrLines.Last());
            Directory.Delete(store, recursive: true);
        }
        finally
        {
            await server.DisposeAndDeleteStoreAsync();
        }
    }

    [Fact]
    public void A_database_that_cannot_be_reached_is_one_error_line_naming_it_without_its_password()
    {
        string files = TestServer.NewStoreDir();
        var result = CliRunner.Run("serve", "--port", "0", "--store", "postgres://sora:pw-hidden@127.0.0.1:1/sora?timeout=3", "--files", files, "--device", "cpu");
        Assert.Equal(Program.ErrorExitCode, result.Code);
        Assert.StartsWith("sora: error: postgres://sora:***@127.0.0.1:1/sora", result.ErrLines.Last());
        Assert.DoesNotContain("pw-hidden", string.Join("\n", result.ErrLines));
        if (Directory.Exists(files)) Directory.Delete(files, recursive: true);
    }

    [Fact]
    public void Help_lists_serve_and_its_options()
    {
        var root = CliRunner.Run("--help");
        Assert.Contains("serve", root.Out);
        var help = CliRunner.Run("serve", "--help");
        foreach (var option in new[] { "--model", "--host", "--port", "--store", "--files", "--runner-lease", "--api-key", "--device", "--max-queue" }) Assert.Contains(option, help.Out);
    }

    [Fact]
    public async Task It_serves_until_cancelled_taking_the_key_from_SORA_API_KEY()
    {
        string store = TestServer.NewStoreDir();
        var err = new LineLog();
        using var cts = new CancellationTokenSource();
        Environment.SetEnvironmentVariable(ServeCommand.ApiKeyVariable, "sk-from-env");
        try
        {
            var run = Task.Run(() => Program.Run(["serve", "--port", "0", "--store", store, "--device", "cpu"], TextWriter.Null, err, cts.Token));
            string url = await ListeningUrl(err, run);
            Assert.Contains(err.Lines, l => l.Contains("API key required", StringComparison.Ordinal));
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/healthz")).StatusCode);
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "sk-from-env");
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);

            cts.Cancel();
            Assert.Same(run, await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(20))));
            Assert.Equal(0, await run);
            Assert.Contains(err.Lines, l => l.EndsWith("sora serve: stopping", StringComparison.Ordinal));
            Assert.True(File.Exists(Path.Combine(store, StoreFolder.DatabaseName)));
        }
        finally
        {
            Environment.SetEnvironmentVariable(ServeCommand.ApiKeyVariable, null);
            cts.Cancel();
            if (Directory.Exists(store)) Directory.Delete(store, recursive: true);
        }
    }

    private static async Task<string> ListeningUrl(LineLog err, Task<int> run)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (run.IsCompleted) throw new InvalidOperationException($"sora serve exited {await run}: {string.Join("\n", err.Lines)}");
            foreach (var line in err.Lines)
                if (Regex.Match(line, @"listening on (http://\S+?),") is { Success: true } m) return m.Groups[1].Value;
            await Task.Delay(50);
        }
        throw new TimeoutException("sora serve did not start: " + string.Join("\n", err.Lines));
    }
}
