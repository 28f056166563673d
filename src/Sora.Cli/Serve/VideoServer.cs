using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Sora.Cli.Serve;

/// <summary>
/// OpenAI's Videos API on Kestrel: create, retrieve, list, delete, download content, remix, edits, extensions,
/// over a durable store and one <see cref="JobRunner"/>. Every failure is answered in OpenAI's error shape.
/// </summary>
public sealed class VideoServer : IAsyncDisposable
{
    private const int DefaultPageSize = 20, MaxPageSize = 100;
    private static readonly string[] Variants = ["video", "thumbnail", "spritesheet"];
    /// <summary>Every path some endpoint serves, so another method on one is a 405 rather than a 404.</summary>
    private static readonly Regex RoutePaths = new("^/(healthz|v1/videos(/[^/]+(/(content|remix))?)?)$", RegexOptions.CultureInvariant);

    private readonly WebApplication _app;
    private readonly StoreFolder _files;
    private readonly IJobStore _store;
    private readonly JobRunner _runner;
    private readonly IVideoEngine _engine;
    private readonly ServerLog _log;
    private readonly ServerOptions _options;
    private readonly VideoRequests _requests;
    private readonly byte[]? _keyHash;
    private bool _stopped, _disposed;

    private VideoServer(ServerOptions options, IVideoEngine engine, ServerLog log, StoreFolder files, IJobStore store)
    {
        _options = options;
        _engine = engine;
        _log = log;
        _files = files;
        _store = store;
        _runner = new JobRunner(store, files, engine, log, options.Limits.MaxBatchTokens);
        _requests = new VideoRequests(engine, store, files, options.Limits);
        _keyHash = options.ApiKey is { } key ? SHA256.HashData(Encoding.UTF8.GetBytes(key)) : null;
        _app = Build(options);
    }

    /// <summary>The address the server listens on, e.g. http://127.0.0.1:8000 (the real port when 0 was asked for).</summary>
    public string Url { get; private set; } = "";

    /// <summary>
    /// Opens (or creates) the store, queues again any job a previous server left in progress, starts the runner
    /// and then Kestrel. The caller keeps owning <paramref name="engine"/>.
    /// </summary>
    public static async Task<VideoServer> StartAsync(ServerOptions options, IVideoEngine engine, ServerLog log)
    {
        var files = new StoreFolder(options.StoreDir, exclusive: options.Database is null);
        IJobStore? store = null;
        VideoServer? server = null;
        try
        {
            store = options.Database is { } url ? new PostgresJobStore(url, options.RunnerLease) : new SqliteJobStore(files.DatabasePath);
            server = new VideoServer(options, engine, log, files, store);
            // A job deleted through another server on the same database stops here too.
            if (store is PostgresJobStore shared) shared.Vanished += server._runner.Cancel;
            server._runner.Start();
            await server._app.StartAsync();
            var addresses = server._app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>();
            server.Url = addresses.Addresses.First();
            return server;
        }
        catch (Exception e)
        {
            if (server is not null) await server.DisposeAsync();
            else
            {
                store?.Dispose();
                files.Dispose();
            }
            if (e is IOException { InnerException: { } } io && io.Message.Contains("address", StringComparison.OrdinalIgnoreCase))
                throw new IOException($"--host {options.Host} --port {options.Port}: cannot listen ({io.Message})", e);
            throw;
        }
    }

    private WebApplication Build(ServerOptions options)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = _files.Root });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = HardBodyCap(options.Limits.MaxBodyBytes);
            k.AddServerHeader = false;
            if (options.Host == "localhost") k.ListenLocalhost(options.Port);
            else if (IPAddress.TryParse(options.Host, out var ip)) k.Listen(ip, options.Port);
            else throw new ArgumentException($"--host {options.Host}: not an IP address or localhost", nameof(options));
        });
        builder.Services.ConfigureHttpJsonOptions(j => j.SerializerOptions.Encoder = ApiError.Json.Encoder);
        builder.Services.Configure<FormOptions>(f =>
        {
            f.MultipartBodyLengthLimit = options.Limits.MaxBodyBytes;
            f.ValueLengthLimit = 1 << 20;
        });
        var app = builder.Build();
        app.Use(Errors);
        app.Use(RefuseOversize);
        app.Use(Authenticate);

        app.MapGet("/healthz", () => Results.Json(new { status = "ok", model = _engine.ModelId, pending = _store.PendingCount() }));
        app.MapPost("/v1/videos", async Task<IResult> (HttpContext c) => Created(await _requests.CreateAsync(await RequestFields.ReadAsync(c.Request, c.RequestAborted), c.RequestAborted)));
        app.MapGet("/v1/videos", (HttpContext c) => List(c.Request.Query));
        app.MapGet("/v1/videos/{id}", (string id) => Results.Json(VideoObject(Find(id))));
        app.MapDelete("/v1/videos/{id}", (string id) => Delete(id));
        app.MapGet("/v1/videos/{id}/content", (string id, HttpContext c) => Content(id, c.Request.Query["variant"]));
        app.MapPost("/v1/videos/{id}/remix", async Task<IResult> (string id, HttpContext c) => Created(await _requests.RemixAsync(id, await RequestFields.ReadAsync(c.Request, c.RequestAborted))));
        app.MapPost("/v1/videos/edits", async Task<IResult> (HttpContext c) => Created(await _requests.EditAsync(await RequestFields.ReadAsync(c.Request, c.RequestAborted), c.RequestAborted)));
        app.MapPost("/v1/videos/extensions", async Task<IResult> (HttpContext c) => Created(await _requests.ExtendAsync(await RequestFields.ReadAsync(c.Request, c.RequestAborted), c.RequestAborted)));
        app.MapFallback((HttpContext c) => throw (RoutePaths.IsMatch(c.Request.Path.Value ?? "")
            ? new ApiError(405, $"{c.Request.Method} is not allowed on {c.Request.Path}.", code: "method_not_allowed")
            : new ApiError(404, $"No route {c.Request.Method} {c.Request.Path}.", code: "unknown_url")));
        return app;
    }

    /// <summary>Any exception becomes an OpenAI-shaped error; the client never sees a stack trace.</summary>
    private async Task Errors(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (Exception e) when (!context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
        {
            var error = e switch
            {
                ApiError a => a,
                Microsoft.AspNetCore.Http.BadHttpRequestException { StatusCode: 413 } => ApiError.TooLarge($"The request body is larger than the limit of {_options.Limits.MaxBodyBytes} bytes."),
                Microsoft.AspNetCore.Http.BadHttpRequestException b => new ApiError(b.StatusCode, $"Bad request: {b.Message}", code: "bad_request"),
                _ => null,
            };
            if (error is null)
            {
                _log.Line($"internal error on {context.Request.Method} {context.Request.Path}: {e.GetType().Name}: {Program.OneLine(e.Message)}");
                error = new ApiError(500, "The server had an error while processing the request.", "server_error", code: "internal_error");
            }
            await error.WriteAsync(context.Response);
        }
    }

    /// <summary>
    /// A body over the limit is a 413. Kestrel's own cap is twice the limit, and a body up to that is read and dropped
    /// before the answer: Kestrel closes the connection on a body over its cap, and a client still sending then sees
    /// a reset instead of the 413. A body without a Content-Length (chunked) is held to the limit by Kestrel itself.
    /// </summary>
    private async Task RefuseOversize(HttpContext context, RequestDelegate next)
    {
        long limit = _options.Limits.MaxBodyBytes;
        long? length = context.Request.ContentLength;
        if (length is null && context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
            size.MaxRequestBodySize = limit;
        if (length is null || length <= limit)
        {
            await next(context);
            return;
        }
        if (length <= HardBodyCap(limit)) await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
        throw ApiError.TooLarge($"The request body is {length} bytes, more than the limit of {limit}.");
    }

    private static long HardBodyCap(long limit) => 2 * limit;

    /// <summary>With an API key, every request needs <c>Authorization: Bearer KEY</c>, compared in constant time.</summary>
    private Task Authenticate(HttpContext context, RequestDelegate next)
    {
        if (_keyHash is null) return next(context);
        string header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.Ordinal))
            throw ApiError.Unauthorized("Missing bearer authentication in header: send 'Authorization: Bearer YOUR_KEY'.");
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim()));
        // Hashes of equal length, so the comparison takes the same time whatever the key's length or prefix.
        if (!CryptographicOperations.FixedTimeEquals(given, _keyHash)) throw ApiError.Unauthorized("Incorrect API key provided.");
        return next(context);
    }

    private IResult Created(VideoJob job)
    {
        _log.Job(job.Id, JobStatus.Queued, $"{job.Spec.Kind.ToString().ToLowerInvariant()}, {job.Seconds} s {job.Size}");
        _runner.Wake();
        return Results.Json(VideoObject(job));
    }

    private VideoJob Find(string id) => _store.Get(id) ?? throw ApiError.NotFound(id);

    private IResult List(IQueryCollection query)
    {
        int limit = DefaultPageSize;
        if (query["limit"].ToString() is { Length: > 0 } l && (!int.TryParse(l, out limit) || limit < 1 || limit > MaxPageSize))
            throw ApiError.BadRequest($"'limit' must be an integer from 1 to {MaxPageSize}.", "limit");
        string order = query["order"].ToString() is { Length: > 0 } o ? o : "desc";
        if (order is not ("asc" or "desc")) throw ApiError.BadRequest("'order' must be 'asc' or 'desc'.", "order");
        string? after = query["after"].ToString() is { Length: > 0 } a ? a : null;
        var page = _store.List(after, limit + 1, order == "asc") ?? throw ApiError.BadRequest($"'after': no video with id '{after}'.", "after");
        var data = page.Take(limit).Select(VideoObject).ToList();
        return Results.Json(new
        {
            @object = "list",
            data,
            first_id = page.Count > 0 ? page[0].Id : null,
            last_id = page.Count > 0 ? page[Math.Min(limit, page.Count) - 1].Id : null,
            has_more = page.Count > limit,
        });
    }

    /// <summary>Removes the job and its files; a job in progress is cancelled before its next step.</summary>
    private IResult Delete(string id)
    {
        var job = Find(id);
        if (_store.Delete(id))
        {
            _runner.Cancel(id);
            _files.DeleteFiles(id);
            _log.Job(id, "deleted", $"was {job.Status}");
        }
        return Results.Json(new { id, @object = "video.deleted", deleted = true });
    }

    /// <summary>variant video (the .mp4, or the .gif without ffmpeg), thumbnail (PNG of the first frame) or spritesheet (PNG).</summary>
    private IResult Content(string id, string? variant)
    {
        variant = string.IsNullOrEmpty(variant) ? "video" : variant;
        if (!Variants.Contains(variant)) throw ApiError.BadRequest($"'variant' must be one of {string.Join(", ", Variants)}.", "variant");
        var job = Find(id);
        if (job.Status != JobStatus.Completed) throw ApiError.NotCompleted(job);
        (string Path, string Type)? file = variant switch
        {
            "video" => _files.VideoFile(id),
            "thumbnail" => (Path.Combine(_files.VideoDir(id), StoreFolder.ThumbnailName), "image/png"),
            _ => (Path.Combine(_files.VideoDir(id), StoreFolder.SpritesheetName), "image/png"),
        };
        if (file is not { } f || !File.Exists(f.Path)) throw ApiError.NotFound(id);
        return Results.File(f.Path, f.Type, enableRangeProcessing: true);
    }

    /// <summary>OpenAI's Video object.</summary>
    private static object VideoObject(VideoJob j) => new
    {
        id = j.Id,
        @object = "video",
        created_at = j.CreatedAt,
        completed_at = j.CompletedAt,
        expires_at = (long?)null,
        status = j.Status,
        progress = j.Progress,
        model = j.Model,
        prompt = j.Prompt,
        seconds = j.Seconds,
        size = j.Size,
        remixed_from_video_id = j.RemixedFromVideoId,
        error = j.Error is { } e ? new { code = e.Code, message = e.Message } : null,
    };

    /// <summary>Stops taking requests, then stops the runner (a running job goes back to the queue).</summary>
    public async Task StopAsync()
    {
        if (_stopped) return;
        _stopped = true;
        await _app.StopAsync();
        _runner.Stop();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        await StopAsync();
        await _app.DisposeAsync();
        _runner.Dispose();
        _store.Dispose();
        _files.Dispose();
    }
}
