using System.CommandLine;
using System.Runtime.InteropServices;

namespace Sora.Cli.Serve;

/// <summary><c>sora serve</c>: OpenAI's Videos API over one loaded model, until Ctrl+C.</summary>
public static class ServeCommand
{
    public const string ApiKeyVariable = "SORA_API_KEY";

    public static Command Build(CliContext context)
    {
        var model = Commands.ModelOption();
        var host = new Option<string>("--host") { Description = "Address to listen on (an IP address or localhost).", DefaultValueFactory = _ => "127.0.0.1", HelpName = "ADDR" };
        var port = new Option<int>("--port", "-p") { Description = "Port to listen on (0: any free port, printed).", DefaultValueFactory = _ => 8000, HelpName = "N" };
        var store = new Option<string>("--store") { Description = "Folder of the job store (sora.db) and the videos; created if absent.", DefaultValueFactory = _ => "sora-store", HelpName = "DIR" };
        var apiKey = new Option<string?>("--api-key") { Description = $"Require 'Authorization: Bearer KEY' on every request (default: ${ApiKeyVariable}; none: no key needed).", HelpName = "KEY" };
        var device = Commands.DeviceOption();
        var maxQueue = new Option<int>("--max-queue") { Description = "Most videos queued or in progress; more get 429.", DefaultValueFactory = _ => new ServerLimits().MaxQueue, HelpName = "N" };
        var maxBatchTokens = new Option<int>("--max-batch-tokens") { Description = "Most tokens of one packed transformer pass over the jobs in flight (bounds memory; more jobs wait).", DefaultValueFactory = _ => new ServerLimits().MaxBatchTokens, HelpName = "N" };
        var command = new Command("serve", "Serve OpenAI's Videos API (POST /v1/videos, ...) with the model, on Kestrel; every job in flight shares one transformer pass per step.")
        {
            model, host, port, store, apiKey, device, maxQueue, maxBatchTokens,
        };
        command.SetAction(parse => Run(context, parse.GetValue(model), parse.GetValue(host)!, parse.GetValue(port), parse.GetValue(store)!,
            parse.GetValue(apiKey) ?? Environment.GetEnvironmentVariable(ApiKeyVariable), parse.GetValue(device)!, parse.GetValue(maxQueue), parse.GetValue(maxBatchTokens)));
        return command;
    }

    private static int Run(CliContext context, string? model, string host, int port, string store, string? apiKey, string device, int maxQueue, int maxBatchTokens)
    {
        if (port is < 0 or > 65535) throw new UsageException($"--port must be 0 to 65535, got {port}");
        if (host != "localhost" && !System.Net.IPAddress.TryParse(host, out _))
            throw new UsageException($"--host {host}: give an IP address (127.0.0.1, 0.0.0.0, ::) or localhost");
        if (maxQueue < 1) throw new UsageException($"--max-queue must be at least 1, got {maxQueue}");
        if (maxBatchTokens < 1) throw new UsageException($"--max-batch-tokens must be at least 1, got {maxBatchTokens}");
        if (apiKey is { Length: 0 }) throw new UsageException("--api-key is empty");
        if (string.IsNullOrWhiteSpace(store)) throw new UsageException("--store: empty path");
        string checkedDevice = Commands.CheckDevice(device);
        string modelDir = ModelLocator.Resolve(model);

        var log = new ServerLog(context.Err);
        using var engine = WanVideoEngine.Load(modelDir, checkedDevice);
        log.Line($"loaded {modelDir} on {engine.DeviceName}");
        var options = new ServerOptions
        {
            Host = host, Port = port, StoreDir = store, ApiKey = apiKey, Limits = new ServerLimits { MaxQueue = maxQueue, MaxBatchTokens = maxBatchTokens },
        };
        var server = VideoServer.StartAsync(options, engine, log).GetAwaiter().GetResult();
        try
        {
            log.Line($"listening on {server.Url}, store {Path.GetFullPath(store)}{(apiKey is null ? ", no API key" : ", API key required")}");
            // SIGTERM (a service manager's stop) ends the server as cleanly as Ctrl+C does.
            using var terminated = new ManualResetEventSlim();
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal =>
            {
                signal.Cancel = true;
                terminated.Set();
            });
            WaitHandle.WaitAny([context.Ct.WaitHandle, terminated.WaitHandle]);
            log.Line("stopping");
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        return 0;
    }
}
