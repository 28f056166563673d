using Microsoft.AspNetCore.Http;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Sora.Cli.Serve;

/// <summary>
/// A request the server refuses, answered in OpenAI's error shape:
/// <c>{"error": {"message": …, "type": …, "param": …, "code": …}}</c> with <see cref="Status"/>.
/// </summary>
public sealed class ApiError(int status, string message, string type = ApiError.InvalidRequest, string? param = null, string? code = null)
    : Exception(message)
{
    public const string InvalidRequest = "invalid_request_error";

    /// <summary>The server's JSON: quotes and apostrophes in messages as themselves, not \u0027.</summary>
    public static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    public static ApiError BadRequest(string message, string? param, string code = "invalid_value") => new(400, message, param: param, code: code);
    public static ApiError NotFound(string id, string? param = null) => new(404, $"Video with id '{id}' not found.", param: param, code: "not_found");

    public static ApiError NotCompleted(VideoJob job, string? param = null)
        => new(409, $"Video '{job.Id}' is {job.Status}, not completed.", param: param, code: "video_not_ready");

    public static ApiError TooLarge(string message) => new(413, message, code: "request_too_large");
    public static ApiError QueueFull(int max) => new(429, $"The queue is full ({max} videos queued or in progress); retry later.", "rate_limit_error", code: "queue_full");
    public static ApiError Unauthorized(string message) => new(401, message, code: "invalid_api_key");

    public async Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = Status;
        response.ContentType = "application/json";
        if (Status == 429) response.Headers.RetryAfter = "5";
        await response.WriteAsync(JsonSerializer.Serialize(new { error = new { message = Message, type = Type, param = Param, code = Code } }, Json));
    }
}
