using System.Collections.Concurrent;
using Npgsql;
using static Sora.Cli.Serve.JobSql;

namespace Sora.Cli.Serve;

/// <summary>
/// Jobs in a PostgreSQL database that several servers share as one queue. A job is claimed with
/// <c>FOR UPDATE SKIP LOCKED</c>, so two servers never take the same one, and stamped with the claiming server's id;
/// every later change of it is made only by that server. Each server writes a heartbeat row (<c>sora_runners</c>)
/// every quarter of <see cref="Lease"/>; a job whose server has been silent for a whole lease is taken to be
/// abandoned (its server died) and is claimed again by the next server that looks. Deleting a job that another
/// server is running is seen at that server's next heartbeat and raised as <see cref="Vanished"/>.
/// </summary>
public sealed class PostgresJobStore : IJobStore
{
    private const int SchemaVersion = 1;
    /// <summary>Serialises schema setup and queue admission across servers (pg_advisory_xact_lock key: "sora" in ASCII).</summary>
    private const long LockKey = 0x736f7261;

    private readonly NpgsqlDataSource _db;
    private readonly string _runner = Guid.NewGuid().ToString("N");
    private readonly ConcurrentDictionary<string, byte> _claimed = new();
    private readonly Timer _heartbeat;
    private readonly Lock _beat = new();
    private bool _disposed;

    /// <param name="url">postgres://user:password@host:port/database?option=value (see <see cref="PostgresUrl"/>).</param>
    /// <param name="lease">How long a silent server keeps its jobs; at least 1 s.</param>
    /// <param name="heartbeat">How often this server says it is alive; a quarter of the lease unless given (tests give longer to play dead).</param>
    public PostgresJobStore(string url, TimeSpan lease, TimeSpan? heartbeat = null)
    {
        if (lease < TimeSpan.FromSeconds(1)) throw new ArgumentOutOfRangeException(nameof(lease), lease, "the runner lease must be at least 1 s");
        Name = PostgresUrl.Redacted(url);
        Lease = lease;
        _db = NpgsqlDataSource.Create(PostgresUrl.ToConnectionString(url));
        try
        {
            CreateSchema();
            Beat();
        }
        catch (Exception e) when (e is NpgsqlException or InvalidDataException or TimeoutException)
        {
            _db.Dispose();
            throw e as InvalidDataException ?? new InvalidDataException($"{Name}: cannot use the database as a job store ({Program.OneLine(e.Message)})", e);
        }
        var every = heartbeat ?? lease / 4;
        _heartbeat = new Timer(_ => Heartbeat(), null, every, every);
    }

    /// <summary>The database as the logs show it (no password).</summary>
    public string Name { get; }

    public TimeSpan Lease { get; }

    /// <summary>
    /// A job this server claimed is no longer its own: deleted (through any server), or claimed by another server
    /// after this one was silent for a lease. The runner should drop it.
    /// </summary>
    public event Action<string>? Vanished;

    private void CreateSchema()
    {
        using var c = _db.OpenConnection();
        using var tx = c.BeginTransaction();
        // Two servers starting at once would otherwise race on CREATE TABLE IF NOT EXISTS.
        Execute(c, "SELECT pg_advisory_xact_lock(@key)", ("key", LockKey));
        Execute(c, """
            CREATE TABLE IF NOT EXISTS sora_schema (version INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS sora_videos (
                seq BIGSERIAL PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                status TEXT NOT NULL,
                progress INTEGER NOT NULL,
                created_at BIGINT NOT NULL,
                completed_at BIGINT,
                model TEXT NOT NULL,
                prompt TEXT,
                seconds TEXT NOT NULL,
                size TEXT NOT NULL,
                remixed_from_video_id TEXT,
                error_code TEXT,
                error_message TEXT,
                attempts INTEGER NOT NULL DEFAULT 0,
                spec TEXT NOT NULL,
                runner TEXT);
            CREATE INDEX IF NOT EXISTS sora_videos_status ON sora_videos (status, seq);
            CREATE TABLE IF NOT EXISTS sora_runners (runner TEXT PRIMARY KEY, seen_at TIMESTAMPTZ NOT NULL);
            """);
        var version = Scalar(c, "SELECT max(version) FROM sora_schema");
        if (version is int v && v > SchemaVersion)
            throw new InvalidDataException($"{Name}: store schema version {v} is newer than this server's {SchemaVersion}");
        if (version is null or DBNull) Execute(c, "INSERT INTO sora_schema (version) VALUES (@v)", ("v", SchemaVersion));
        tx.Commit();
    }

    public bool TryAdd(VideoJob job, int maxPending)
    {
        using var c = _db.OpenConnection();
        using var tx = c.BeginTransaction();
        // Counting and inserting under one lock, so servers taking requests at once cannot overfill the queue together.
        Execute(c, "SELECT pg_advisory_xact_lock(@key)", ("key", LockKey));
        int added = InsertUnlessFull(c, "sora_videos", '@', job, maxPending);
        tx.Commit();
        return added == 1;
    }

    public VideoJob? Get(string id)
    {
        using var c = _db.OpenConnection();
        return Query(c, $"SELECT {Columns} FROM sora_videos WHERE id = @id", ("id", id)).SingleOrDefault();
    }

    public IReadOnlyList<VideoJob>? List(string? after, int limit, bool ascending)
    {
        using var c = _db.OpenConnection();
        long? from = null;
        if (after is not null)
        {
            from = Scalar(c, "SELECT seq FROM sora_videos WHERE id = @id", ("id", after)) as long?;
            if (from is null) return null;
        }
        string where = from is null ? "" : ascending ? "WHERE seq > @from" : "WHERE seq < @from";
        string order = ascending ? "ASC" : "DESC";
        return Query(c, $"SELECT {Columns} FROM sora_videos {where} ORDER BY seq {order} LIMIT @limit", ("from", from ?? 0L), ("limit", (long)limit));
    }

    public bool Delete(string id)
    {
        using var c = _db.OpenConnection();
        return Execute(c, "DELETE FROM sora_videos WHERE id = @id", ("id", id)) == 1;
    }

    /// <summary>The oldest job that is queued or whose server has been silent for a lease, claimed by this server.</summary>
    public VideoJob? ClaimNext()
    {
        using var c = _db.OpenConnection();
        var job = Query(c, $"""
            WITH next AS (
                SELECT seq FROM sora_videos v
                WHERE v.status = 'queued'
                   OR (v.status = 'in_progress' AND NOT EXISTS (
                        SELECT 1 FROM sora_runners r WHERE r.runner = v.runner AND r.seen_at > now() - @lease))
                ORDER BY seq LIMIT 1
                FOR UPDATE SKIP LOCKED)
            UPDATE sora_videos SET status = 'in_progress', progress = 0, attempts = attempts + 1, runner = @runner
            FROM next WHERE sora_videos.seq = next.seq
            RETURNING {Qualified("sora_videos")}
            """, ("lease", Lease), ("runner", _runner)).SingleOrDefault();
        if (job is not null) _claimed[job.Id] = 0;
        return job;
    }

    public void SetProgress(string id, int progress)
    {
        using var c = _db.OpenConnection();
        Execute(c, "UPDATE sora_videos SET progress = @p WHERE id = @id AND status = 'in_progress' AND runner = @runner",
            ("id", id), ("p", progress), ("runner", _runner));
    }

    public bool Complete(string id, long completedAt)
    {
        _claimed.TryRemove(id, out _);
        using var c = _db.OpenConnection();
        return Execute(c, """
            UPDATE sora_videos SET status = 'completed', progress = 100, completed_at = @t
            WHERE id = @id AND status = 'in_progress' AND runner = @runner
            """, ("id", id), ("t", completedAt), ("runner", _runner)) == 1;
    }

    public bool Fail(string id, JobError error, long completedAt)
    {
        _claimed.TryRemove(id, out _);
        using var c = _db.OpenConnection();
        return Execute(c, """
            UPDATE sora_videos SET status = 'failed', completed_at = @t, error_code = @code, error_message = @message
            WHERE id = @id AND status = 'in_progress' AND runner = @runner
            """, ("id", id), ("t", completedAt), ("code", error.Code), ("message", error.Message), ("runner", _runner)) == 1;
    }

    public void Requeue(string id)
    {
        _claimed.TryRemove(id, out _);
        using var c = _db.OpenConnection();
        Execute(c, "UPDATE sora_videos SET status = 'queued', progress = 0, runner = NULL WHERE id = @id AND status = 'in_progress' AND runner = @runner",
            ("id", id), ("runner", _runner));
    }

    /// <summary>Jobs in progress under a server silent for a lease → queued; the jobs of servers still alive are theirs.</summary>
    public IReadOnlyList<string> RequeueAbandoned()
    {
        using var c = _db.OpenConnection();
        return Strings(c, """
            UPDATE sora_videos v SET status = 'queued', progress = 0, runner = NULL
            WHERE v.status = 'in_progress' AND NOT EXISTS (
                SELECT 1 FROM sora_runners r WHERE r.runner = v.runner AND r.seen_at > now() - @lease)
            RETURNING v.id
            """, ("lease", Lease));
    }

    public int PendingCount()
    {
        using var c = _db.OpenConnection();
        return (int)(long)Scalar(c, "SELECT COUNT(*) FROM sora_videos WHERE status IN ('queued', 'in_progress')")!;
    }

    /// <summary>This server is alive; and which of its jobs it no longer holds. A database hiccup waits for the next beat.</summary>
    private void Heartbeat()
    {
        List<string> gone;
        lock (_beat)
        {
            if (_disposed) return;
            try
            {
                Beat();
                gone = Vanish();
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                return;
            }
        }
        foreach (var id in gone) Vanished?.Invoke(id);
    }

    private void Beat()
    {
        using var c = _db.OpenConnection();
        Execute(c, """
            INSERT INTO sora_runners (runner, seen_at) VALUES (@runner, now())
            ON CONFLICT (runner) DO UPDATE SET seen_at = now()
            """, ("runner", _runner));
    }

    private List<string> Vanish()
    {
        var claimed = _claimed.Keys.ToArray();
        if (claimed.Length == 0) return [];
        using var c = _db.OpenConnection();
        var held = Strings(c, "SELECT id FROM sora_videos WHERE id = ANY(@ids) AND runner = @runner AND status = 'in_progress'",
            ("ids", claimed), ("runner", _runner)).ToHashSet();
        var gone = claimed.Where(id => !held.Contains(id)).ToList();
        foreach (var id in gone) _claimed.TryRemove(id, out _);
        return gone;
    }

    private static string Qualified(string table) => string.Join(", ", Columns.Split(", ").Select(c => $"{table}.{c}"));

    private List<VideoJob> Query(NpgsqlConnection c, string sql, params (string, object)[] args) => JobSql.Query(c, Name, sql, args);

    /// <summary>Stops the heartbeat and removes this server's row, so any job it still held is free at once.</summary>
    public void Dispose()
    {
        lock (_beat)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _heartbeat.Dispose();
        try
        {
            using var c = _db.OpenConnection();
            Execute(c, "DELETE FROM sora_runners WHERE runner = @runner", ("runner", _runner));
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // Unreachable now: the row goes stale after a lease instead.
        }
        _db.Dispose();
    }
}
