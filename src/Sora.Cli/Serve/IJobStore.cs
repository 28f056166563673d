namespace Sora.Cli.Serve;

/// <summary>
/// The durable queue and record of jobs. Every state change is one atomic operation, so a job is claimed by one
/// runner and completed once; the SQLite store is one implementation, a shared database (PostgreSQL, claiming with
/// FOR UPDATE SKIP LOCKED) another.
/// </summary>
public interface IJobStore : IDisposable
{
    /// <summary>Adds a queued job unless <paramref name="maxPending"/> jobs are already queued or in progress (then false).</summary>
    bool TryAdd(VideoJob job, int maxPending);

    VideoJob? Get(string id);

    /// <summary>
    /// Up to <paramref name="limit"/> jobs in creation order (newest first unless <paramref name="ascending"/>),
    /// starting after the job <paramref name="after"/>; null when <paramref name="after"/> names no job.
    /// </summary>
    IReadOnlyList<VideoJob>? List(string? after, int limit, bool ascending);

    /// <summary>Removes the job; false when there was none.</summary>
    bool Delete(string id);

    /// <summary>The oldest queued job, now in progress (its attempt counted); null when none is queued.</summary>
    VideoJob? ClaimNext();

    void SetProgress(string id, int progress);

    /// <summary>In progress → completed; false when the job is gone (deleted meanwhile) or not in progress.</summary>
    bool Complete(string id, long completedAt);

    /// <summary>In progress → failed with <paramref name="error"/>; false when the job is gone.</summary>
    bool Fail(string id, JobError error, long completedAt);

    /// <summary>In progress → queued again (its runner stopped before finishing).</summary>
    void Requeue(string id);

    /// <summary>Every job left in progress by a server that stopped → queued; returns their ids.</summary>
    IReadOnlyList<string> RequeueAbandoned();

    /// <summary>Jobs queued or in progress.</summary>
    int PendingCount();
}
