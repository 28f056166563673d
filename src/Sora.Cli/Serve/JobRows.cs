using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sora.Cli.Serve;

/// <summary>The columns a job store keeps for a job, and how one row reads back as a <see cref="VideoJob"/> (any ADO.NET provider).</summary>
internal static class JobRows
{
    public const string Columns = "id, status, progress, created_at, completed_at, model, prompt, seconds, size, "
        + "remixed_from_video_id, error_code, error_message, attempts, spec";

    private static readonly JsonSerializerOptions SpecJson = new() { Converters = { new JsonStringEnumConverter() } };

    public static string SpecText(JobSpec spec) => JsonSerializer.Serialize(spec, SpecJson);

    /// <summary>The row under the reader (selected as <see cref="Columns"/>); <paramref name="store"/> names the store in errors.</summary>
    public static VideoJob Read(DbDataReader r, string store)
    {
        string id = r.GetString(0);
        JobSpec spec;
        try
        {
            spec = JsonSerializer.Deserialize<JobSpec>(r.GetString(13), SpecJson) ?? throw new JsonException("null spec");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{store}: job {id} has an unreadable spec ({e.Message})", e);
        }
        return new VideoJob
        {
            Id = id,
            Status = r.GetString(1),
            Progress = r.GetInt32(2),
            CreatedAt = r.GetInt64(3),
            CompletedAt = r.IsDBNull(4) ? null : r.GetInt64(4),
            Model = r.GetString(5),
            Prompt = r.IsDBNull(6) ? null : r.GetString(6),
            Seconds = r.GetString(7),
            Size = r.GetString(8),
            RemixedFromVideoId = r.IsDBNull(9) ? null : r.GetString(9),
            Error = r.IsDBNull(10) ? null : new JobError(r.GetString(10), r.IsDBNull(11) ? "" : r.GetString(11)),
            Attempts = r.GetInt32(12),
            Spec = spec,
        };
    }
}
