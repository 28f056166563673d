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
        var store = new Option<string>("--store") { Description = "Folder of the job store (sora.db) and the videos, created if absent; or a postgres://user:password@host:port/database URL whose queue several servers share.", DefaultValueFactory = _ => "sora-store", HelpName = "DIR|URL" };
        var files = new Option<string?>("--files") { Description = "With a postgres:// store: the folder of the videos and uploads, the same for every server on that database (default: sora-store).", HelpName = "DIR" };
        var lease = new Option<double>("--runner-lease") { Description = "With a postgres:// store: seconds a server may be silent before its jobs are taken for abandoned and run by another.", DefaultValueFactory = _ => new ServerOptions { StoreDir = "" }.RunnerLease.TotalSeconds, HelpName = "S" };
        var apiKey = new Option<string?>("--api-key") { Description = $"Require 'Authorization: Bearer KEY' on every request (default: ${ApiKeyVariable}; none: no key needed).", HelpName = "KEY" };
        var device = Commands.DeviceOption();
        var maxQueue = new Option<int>("--max-queue") { Description = "Most videos queued or in progress; more get 429.", DefaultValueFactory = _ => new ServerLimits().MaxQueue, HelpName = "N" };
        var maxBatchTokens = new Option<int>("--max-batch-tokens") { Description = "Most tokens of one packed transformer pass over the jobs in flight (bounds memory; more jobs wait).", DefaultValueFactory = _ => new ServerLimits().MaxBatchTokens, HelpName = "N" };
        var command = new Command("serve", "Serve OpenAI's Videos API (POST /v1/videos, ...) with the model, on Kestrel; every job in flight shares one transformer pass per step.")
        {
            model, host, port, store, files, lease, apiKey, device, maxQueue, maxBatchTokens,
        };
        command.SetAction(parse =>
        {
            var (storeDir, database) = StoreOf(parse.GetValue(store)!, parse.GetValue(files), parse.GetValue(lease));
            return Run(context, parse.GetValue(model), parse.GetValue(host)!, parse.GetValue(port), storeDir, database, TimeSpan.FromSeconds(parse.GetValue(lease)),
                parse.GetValue(apiKey) ?? Environment.GetEnvironmentVariable(ApiKeyVariable), parse.GetValue(device)!, parse.GetValue(maxQueue), parse.GetValue(maxBatchTokens));
        });
        return command;
    }

    /// <summary>The files folder and, for a postgres:// store, the database URL (checked here, so a typo is a usage error).</summary>
    private static (string StoreDir, string? Database) StoreOf(string store, string? files, double leaseSeconds)
    {
        if (string.IsNullOrWhiteSpace(store)) throw new UsageException("--store: empty path");
        if (files is { } f && string.IsNullOrWhiteSpace(f)) throw new UsageException("--files: empty path");
        if (!(leaseSeconds >= 1 && leaseSeconds <= 86400)) throw new UsageException($"--runner-lease must be 1 to 86400 seconds, got {leaseSeconds}");
        if (!PostgresUrl.IsUrl(store))
        {
            if (files is not null) throw new UsageException("--files applies only with a postgres:// --store (a folder store keeps its files in itself)");
            return (store, null);
        }
        try
        {
            PostgresUrl.ToConnectionString(store);
        }
        catch (ArgumentException e)
        {
            throw new UsageException("--store " + e.Message.Split(" (Parameter")[0]);
        }
        return (files ?? "sora-store", store);
    }

    private static int Run(CliContext context, string? model, string host, int port, string store, string? database, TimeSpan lease, string? apiKey, string device, int maxQueue, int maxBatchTokens)
    {
        if (port is < 0 or > 65535) throw new UsageException($"--port must be 0 to 65535, got {port}");
        if (host != "localhost" && !System.Net.IPAddress.TryParse(host, out _))
            throw new UsageException($"--host {host}: give an IP address (127.0.0.1, 0.0.0.0, ::) or localhost");
        if (maxQueue < 1) throw new UsageException($"--max-queue must be at least 1, got {maxQueue}");
        if (maxBatchTokens < 1) throw new UsageException($"--max-batch-tokens must be at least 1, got {maxBatchTokens}");
        if (apiKey is { Length: 0 }) throw new UsageException("--api-key is empty");
        string checkedDevice = Commands.CheckDevice(device);
        string modelDir = ModelLocator.Resolve(model);

        var log = new ServerLog(context.Err);
        using var engine = WanVideoEngine.Load(modelDir, checkedDevice);
        log.Line($"loaded {modelDir} on {engine.DeviceName}");
        var options = new ServerOptions
        {
            Host = host, Port = port, StoreDir = store, Database = database, RunnerLease = lease, ApiKey = apiKey, Limits = new ServerLimits { MaxQueue = maxQueue, MaxBatchTokens = maxBatchTokens },
        };
        var server = VideoServer.StartAsync(options, engine, log).GetAwaiter().GetResult();
        try
        {
            string where = database is null ? $"store {Path.GetFullPath(store)}" : $"store {PostgresUrl.Redacted(database)}, files {Path.GetFullPath(store)}";
            log.Line($"listening on {server.Url}, {where}{(apiKey is null ? ", no API key" : ", API key required")}");
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
