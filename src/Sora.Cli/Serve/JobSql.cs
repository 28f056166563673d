using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sora.Cli.Serve;

/// <summary>
/// What the SQL job stores share, over any ADO.NET provider: the columns kept for a job, how a row reads back as a
/// <see cref="VideoJob"/>, and commands with named parameters (SQLite's <c>$name</c>, PostgreSQL's <c>@name</c>).
/// </summary>
internal static class JobSql
{
    public const string Columns = "id, status, progress, created_at, completed_at, model, prompt, seconds, size, "
        + "remixed_from_video_id, error_code, error_message, attempts, spec";

    private static readonly JsonSerializerOptions SpecJson = new() { Converters = { new JsonStringEnumConverter() } };

    private static string SpecText(JobSpec spec) => JsonSerializer.Serialize(spec, SpecJson);

    /// <summary>
    /// Adds the queued job to <paramref name="table"/> in one statement unless <paramref name="maxPending"/> jobs are
    /// queued or in progress (then no row); <paramref name="prefix"/> marks a parameter name in the provider's SQL.
    /// </summary>
    public static int InsertUnlessFull(DbConnection c, string table, char prefix, VideoJob job, int maxPending)
    {
        string P(string name) => prefix + name;
        return Execute(c, $"""
            INSERT INTO {table} ({Columns})
            SELECT {P("id")}, {P("status")}, {P("progress")}, {P("created_at")}, NULL, {P("model")}, {P("prompt")}, {P("seconds")}, {P("size")},
                   {P("remixed")}, NULL, NULL, 0, {P("spec")}
            WHERE (SELECT COUNT(*) FROM {table} WHERE status IN ('queued', 'in_progress')) < {P("max")}
            """,
            (P("id"), job.Id), (P("status"), job.Status), (P("progress"), job.Progress), (P("created_at"), job.CreatedAt), (P("model"), job.Model),
            (P("prompt"), (object?)job.Prompt ?? DBNull.Value), (P("seconds"), job.Seconds), (P("size"), job.Size),
            (P("remixed"), (object?)job.RemixedFromVideoId ?? DBNull.Value), (P("spec"), SpecText(job.Spec)), (P("max"), (long)maxPending));
    }

    public static int Execute(DbConnection c, string sql, params (string, object)[] args)
    {
        using var cmd = Command(c, sql, args);
        return cmd.ExecuteNonQuery();
    }

    public static object? Scalar(DbConnection c, string sql, params (string, object)[] args)
    {
        using var cmd = Command(c, sql, args);
        return cmd.ExecuteScalar();
    }

    /// <summary>The jobs a query selecting <see cref="Columns"/> returns; <paramref name="store"/> names the store in errors.</summary>
    public static List<VideoJob> Query(DbConnection c, string store, string sql, params (string, object)[] args)
    {
        using var cmd = Command(c, sql, args);
        using var r = cmd.ExecuteReader();
        var jobs = new List<VideoJob>();
        while (r.Read()) jobs.Add(Read(r, store));
        return jobs;
    }

    /// <summary>The first column of every row.</summary>
    public static List<string> Strings(DbConnection c, string sql, params (string, object)[] args)
    {
        using var cmd = Command(c, sql, args);
        using var r = cmd.ExecuteReader();
        var values = new List<string>();
        while (r.Read()) values.Add(r.GetString(0));
        return values;
    }

    private static DbCommand Command(DbConnection c, string sql, (string Name, object Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in args)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = name;
            p.Value = value;
            cmd.Parameters.Add(p);
        }
        return cmd;
    }

    /// <summary>The row under the reader (selected as <see cref="Columns"/>); <paramref name="store"/> names the store in errors.</summary>
    private static VideoJob Read(DbDataReader r, string store)
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
