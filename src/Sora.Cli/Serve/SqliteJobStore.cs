using Microsoft.Data.Sqlite;
using static Sora.Cli.Serve.JobSql;

namespace Sora.Cli.Serve;

/// <summary>
/// Jobs in one SQLite file (WAL journal, so readers never wait for the runner's writes). Creation order is the
/// autoincrement <c>seq</c>, which the list cursor follows; the job's <see cref="JobSpec"/> is a JSON column.
/// One server per file: <see cref="RequeueAbandoned"/> assumes no other runner holds a job.
/// </summary>
public sealed class SqliteJobStore : IJobStore
{
    private const int SchemaVersion = 1;

    private readonly string _connectionString;

    public SqliteJobStore(string path)
    {
        Path = path;
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
        try
        {
            using var c = Open();
            Execute(c, "PRAGMA journal_mode = WAL");
            long version = (long)Scalar(c, "PRAGMA user_version")!;
            if (version > SchemaVersion)
                throw new InvalidDataException($"{path}: store schema version {version} is newer than this server's {SchemaVersion}");
            Execute(c, """
                CREATE TABLE IF NOT EXISTS videos (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    status TEXT NOT NULL,
                    progress INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    completed_at INTEGER,
                    model TEXT NOT NULL,
                    prompt TEXT,
                    seconds TEXT NOT NULL,
                    size TEXT NOT NULL,
                    remixed_from_video_id TEXT,
                    error_code TEXT,
                    error_message TEXT,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    spec TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS videos_status ON videos (status, seq);
                """);
            Execute(c, $"PRAGMA user_version = {SchemaVersion}");
        }
        catch (Exception e) when (e is SqliteException or InvalidDataException)
        {
            // A pooled connection to this file must not outlive the refusal (a later store at the same path would reuse it).
            Dispose();
            throw e as InvalidDataException ?? new InvalidDataException($"{path}: not a usable job store ({e.Message})", e);
        }
    }

    public string Path { get; }

    public bool TryAdd(VideoJob job, int maxPending)
    {
        using var c = Open();
        // One statement, so two requests at once cannot both take the last free place in the queue.
        return InsertUnlessFull(c, "videos", '$', job, maxPending) == 1;
    }

    public VideoJob? Get(string id)
    {
        using var c = Open();
        return Query(c, $"SELECT {Columns} FROM videos WHERE id = $id", ("$id", id)).SingleOrDefault();
    }

    public IReadOnlyList<VideoJob>? List(string? after, int limit, bool ascending)
    {
        using var c = Open();
        long? from = null;
        if (after is not null)
        {
            from = (long?)Scalar(c, "SELECT seq FROM videos WHERE id = $id", ("$id", after));
            if (from is null) return null;
        }
        string where = from is null ? "" : ascending ? "WHERE seq > $from" : "WHERE seq < $from";
        string order = ascending ? "ASC" : "DESC";
        return Query(c, $"SELECT {Columns} FROM videos {where} ORDER BY seq {order} LIMIT $limit",
            ("$from", from ?? 0), ("$limit", limit));
    }

    public bool Delete(string id)
    {
        using var c = Open();
        return Execute(c, "DELETE FROM videos WHERE id = $id", ("$id", id)) == 1;
    }

    public VideoJob? ClaimNext()
    {
        using var c = Open();
        return Query(c, $"""
            UPDATE videos SET status = 'in_progress', progress = 0, attempts = attempts + 1
            WHERE seq = (SELECT seq FROM videos WHERE status = 'queued' ORDER BY seq LIMIT 1)
            RETURNING {Columns}
            """).SingleOrDefault();
    }

    public void SetProgress(string id, int progress)
    {
        using var c = Open();
        Execute(c, "UPDATE videos SET progress = $p WHERE id = $id AND status = 'in_progress'", ("$id", id), ("$p", progress));
    }

    public bool Complete(string id, long completedAt)
    {
        using var c = Open();
        return Execute(c, "UPDATE videos SET status = 'completed', progress = 100, completed_at = $t WHERE id = $id AND status = 'in_progress'",
            ("$id", id), ("$t", completedAt)) == 1;
    }

    public bool Fail(string id, JobError error, long completedAt)
    {
        using var c = Open();
        return Execute(c, """
            UPDATE videos SET status = 'failed', completed_at = $t, error_code = $code, error_message = $message
            WHERE id = $id AND status = 'in_progress'
            """, ("$id", id), ("$t", completedAt), ("$code", error.Code), ("$message", error.Message)) == 1;
    }

    public void Requeue(string id)
    {
        using var c = Open();
        Execute(c, "UPDATE videos SET status = 'queued', progress = 0 WHERE id = $id AND status = 'in_progress'", ("$id", id));
    }

    public IReadOnlyList<string> RequeueAbandoned()
    {
        using var c = Open();
        return Strings(c, "UPDATE videos SET status = 'queued', progress = 0 WHERE status = 'in_progress' RETURNING id");
    }

    public int PendingCount()
    {
        using var c = Open();
        return (int)(long)Scalar(c, "SELECT COUNT(*) FROM videos WHERE status IN ('queued', 'in_progress')")!;
    }

    private SqliteConnection Open()
    {
        var c = new SqliteConnection(_connectionString);
        c.Open();
        return c;
    }

    private List<VideoJob> Query(SqliteConnection c, string sql, params (string, object)[] args) => JobSql.Query(c, Path, sql, args);

    public void Dispose() => SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
}
