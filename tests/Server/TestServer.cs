using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Sora.Cli;
using Sora.Cli.Serve;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>The shipped model (weights/) on the CPU backend, loaded once for every server test.</summary>
public sealed class ServedModel : IDisposable
{
    public WanVideoEngine Engine { get; } = WanVideoEngine.Load(ModelLocator.Resolve(null), "cpu");

    public void Dispose() => Engine.Dispose();
}

/// <summary>The server tests share one engine, which runs one job at a time: they run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServedModel>
{
    public const string Name = "Server";
}

/// <summary>The server's log as lines, readable while the runner writes.</summary>
public sealed class LineLog : TextWriter
{
    private readonly ConcurrentQueue<string> _lines = new();

    public override Encoding Encoding => Encoding.UTF8;
    public override void WriteLine(string? value) => _lines.Enqueue(value ?? "");
    public override void Write(char value) => throw new NotSupportedException("ServerLog writes whole lines");

    public IReadOnlyList<string> Lines => _lines.ToArray();

    /// <summary>Lines saying <paramref name="id"/> reached <paramref name="state"/>.</summary>
    public int Count(string id, string state) => Lines.Count(l => l.Contains($" {id} {state}", StringComparison.Ordinal));
}

/// <summary>A <see cref="VideoServer"/> on a free loopback port with an HTTP client for it.</summary>
public sealed class TestServer : IAsyncDisposable
{
    public static readonly TimeSpan JobTimeout = TimeSpan.FromSeconds(60);

    private TestServer(VideoServer server, string storeDir, LineLog log, string? apiKey)
    {
        Server = server;
        StoreDir = storeDir;
        Log = log;
        Http = new HttpClient { BaseAddress = new Uri(server.Url), Timeout = TimeSpan.FromSeconds(60) };
        if (apiKey is not null) Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
    }

    public VideoServer Server { get; }
    public string StoreDir { get; }
    public LineLog Log { get; }
    public HttpClient Http { get; }
    public string Url => Server.Url;

    public static string NewStoreDir() => Path.Combine(Path.GetTempPath(), "sora-serve-" + Guid.NewGuid().ToString("N"));

    public static async Task<TestServer> StartAsync(IVideoEngine engine, string? storeDir = null, ServerLimits? limits = null, string? apiKey = null, LineLog? log = null)
    {
        storeDir ??= NewStoreDir();
        log ??= new LineLog();
        var options = new ServerOptions { Host = "127.0.0.1", Port = 0, StoreDir = storeDir, ApiKey = apiKey, Limits = limits ?? new ServerLimits() };
        var server = await VideoServer.StartAsync(options, engine, new ServerLog(log));
        return new TestServer(server, storeDir, log, apiKey);
    }

    /// <summary>POST a multipart form (what the openai clients send); files are (field, file name, bytes).</summary>
    public Task<HttpResponseMessage> PostFormAsync(string path, IEnumerable<(string Name, string Value)> fields, params (string Name, string FileName, byte[] Bytes)[] files)
    {
        var form = new MultipartFormDataContent();
        foreach (var (name, value) in fields) form.Add(new StringContent(value), name);
        foreach (var (name, fileName, bytes) in files) form.Add(new ByteArrayContent(bytes), name, fileName);
        return Http.PostAsync(path, form);
    }

    public Task<HttpResponseMessage> PostJsonAsync(string path, object body)
        => Http.PostAsync(path, new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"));

    /// <summary>Creates a video from form fields and returns its Video object (asserting a 200).</summary>
    public async Task<JsonElement> CreateAsync(params (string Name, string Value)[] fields)
        => await Ok(await PostFormAsync("/v1/videos", fields));

    public async Task<JsonElement> GetAsync(string id) => await Ok(await Http.GetAsync($"/v1/videos/{id}"));

    /// <summary>Polls until the video leaves queued/in_progress (or <paramref name="until"/> holds) and returns it.</summary>
    public Task<JsonElement> WaitAsync(string id, Func<JsonElement, bool>? until = null) => WaitAsync(Http, id, until, JobTimeout);

    /// <summary>The same against any server's client (a <c>sora serve</c> process's too), waiting at most <paramref name="timeout"/>.</summary>
    public static async Task<JsonElement> WaitAsync(HttpClient http, string id, Func<JsonElement, bool>? until, TimeSpan timeout)
    {
        until ??= v => v.GetProperty("status").GetString() is "completed" or "failed";
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var video = await Ok(await http.GetAsync($"/v1/videos/{id}"));
            if (until(video)) return video;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{id} is still {video.GetProperty("status")} after {timeout.TotalSeconds} s");
            await Task.Delay(50);
        }
    }

    public static async Task<JsonElement> Ok(HttpResponseMessage response)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>Asserts an OpenAI-shaped error with this status (and param when given) and returns its error object.</summary>
    public static async Task<JsonElement> Error(HttpResponseMessage response, int status, string? param = null)
    {
        string body = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"expected {status}, got {(int)response.StatusCode}: {body}");
        Assert.StartsWith("application/json", response.Content.Headers.ContentType?.ToString());
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error").Clone();
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("code", out _), body);
        Assert.True(error.TryGetProperty("param", out var p), body);
        if (param is not null) Assert.Equal(param, p.GetString());
        Assert.DoesNotContain(" at Sora.", body);
        return error;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }

    /// <summary>Stops the server and removes its store folder.</summary>
    public async Task DisposeAndDeleteStoreAsync()
    {
        await DisposeAsync();
        Directory.Delete(StoreDir, recursive: true);
    }
}
