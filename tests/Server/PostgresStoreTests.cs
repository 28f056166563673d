using System.Collections.Concurrent;
using Sora.Cli.Serve;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>Several servers on one PostgreSQL queue: each job claimed once, dead servers' jobs taken over, live ones' left alone.</summary>
public sealed class PostgresStoreTests(PostgresServer postgres) : IClassFixture<PostgresServer>, IDisposable
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(20);
    private readonly List<PostgresJobStore> _stores = [];

    private PostgresJobStore Store(string url, TimeSpan? lease = null, TimeSpan? heartbeat = null)
    {
        var store = new PostgresJobStore(url, lease ?? Lease, heartbeat);
        _stores.Add(store);
        return store;
    }

    [PostgresFact]
    public async Task Four_servers_claiming_at_once_take_every_job_exactly_once()
    {
        string url = postgres.NewDatabase();
        var stores = Enumerable.Range(0, 4).Select(_ => Store(url)).ToList();
        var ids = new List<string>();
        for (int i = 0; i < 80; i++)
        {
            var job = JobStoreTests.Job(i);
            Assert.True(stores[i % 4].TryAdd(job, 1000));
            ids.Add(job.Id);
        }
        var claims = new ConcurrentBag<(int Server, string Id)>();
        using var start = new Barrier(stores.Count);
        await Task.WhenAll(stores.Select((s, k) => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            while (s.ClaimNext() is { } job)
            {
                claims.Add((k, job.Id));
                Thread.Sleep(5); // the job's work, so every server keeps coming back to the queue
                Assert.True(s.Complete(job.Id, 1_800_000_000));
            }
        }, TaskCreationOptions.LongRunning)));
        Assert.Equal(ids.Order(), claims.Select(c => c.Id).Order());
        Assert.All(ids, id => Assert.Equal((JobStatus.Completed, 1), (stores[0].Get(id)!.Status, stores[0].Get(id)!.Attempts)));
        Assert.True(claims.Select(c => c.Server).Distinct().Count() > 1, "one server took every job");
    }

    [PostgresFact]
    public async Task Servers_adding_at_once_never_overfill_the_queue()
    {
        string url = postgres.NewDatabase();
        var stores = Enumerable.Range(0, 4).Select(_ => Store(url)).ToList();
        var added = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(() => stores[i % 4].TryAdd(JobStoreTests.Job(i), 12))));
        Assert.Equal(12, added.Count(a => a));
        Assert.Equal(12, stores[1].PendingCount());
    }

    [PostgresFact]
    public async Task A_silent_servers_job_is_claimed_by_another_after_its_lease_and_only_the_new_runner_may_finish_it()
    {
        string url = postgres.NewDatabase();
        var lease = TimeSpan.FromSeconds(5);
        var dead = Store(url, lease, heartbeat: TimeSpan.FromHours(1)); // beats once, at start, then never again
        var alive = Store(url, lease);
        var job = JobStoreTests.Job(0);
        Assert.True(dead.TryAdd(job, 10));
        Assert.Equal(job.Id, dead.ClaimNext()!.Id);
        Assert.Null(alive.ClaimNext()); // the first server is still within its lease
        Assert.Empty(alive.RequeueAbandoned());

        await Task.Delay(lease + TimeSpan.FromSeconds(1));
        Assert.Equal([job.Id], alive.RequeueAbandoned());
        var taken = alive.ClaimNext()!;
        Assert.Equal((job.Id, 2), (taken.Id, taken.Attempts));
        dead.SetProgress(job.Id, 90);
        Assert.False(dead.Complete(job.Id, 1_800_000_000));
        Assert.Equal(0, alive.Get(job.Id)!.Progress);
        Assert.True(alive.Complete(job.Id, 1_800_000_001));
    }

    [PostgresFact]
    public async Task A_silent_servers_job_is_claimed_straight_from_in_progress_by_the_next_look()
    {
        string url = postgres.NewDatabase();
        var lease = TimeSpan.FromSeconds(1);
        var dead = Store(url, lease, heartbeat: TimeSpan.FromHours(1));
        var alive = Store(url, lease);
        var older = JobStoreTests.Job(0);
        var newer = JobStoreTests.Job(1);
        Assert.True(dead.TryAdd(older, 10));
        Assert.Equal(older.Id, dead.ClaimNext()!.Id);
        Assert.True(alive.TryAdd(newer, 10));
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal((older.Id, 2), (alive.ClaimNext()!.Id, alive.Get(older.Id)!.Attempts));
        Assert.Equal(newer.Id, alive.ClaimNext()!.Id);
    }

    [PostgresFact]
    public void A_stopped_server_frees_its_jobs_at_once_and_a_live_one_keeps_them()
    {
        string url = postgres.NewDatabase();
        var first = Store(url);
        var second = Store(url);
        var third = Store(url);
        var a = JobStoreTests.Job(0);
        var b = JobStoreTests.Job(1);
        Assert.True(first.TryAdd(a, 10) && first.TryAdd(b, 10));
        Assert.Equal(a.Id, first.ClaimNext()!.Id);
        Assert.Equal(b.Id, second.ClaimNext()!.Id);
        first.Dispose();
        Assert.Equal([a.Id], third.RequeueAbandoned());
        Assert.Equal((a.Id, 2), (third.ClaimNext()!.Id, third.Get(a.Id)!.Attempts));
        Assert.Null(third.ClaimNext());
        Assert.True(second.Complete(b.Id, 1_800_000_000));
    }

    [PostgresFact]
    public async Task Deleting_a_job_through_another_server_tells_its_runner_at_the_next_heartbeat()
    {
        string url = postgres.NewDatabase();
        var runner = Store(url, TimeSpan.FromSeconds(2), heartbeat: TimeSpan.FromMilliseconds(100));
        var other = Store(url);
        var vanished = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        runner.Vanished += id => vanished.TrySetResult(id);
        var kept = JobStoreTests.Job(0);
        var deleted = JobStoreTests.Job(1);
        Assert.True(other.TryAdd(kept, 10) && other.TryAdd(deleted, 10));
        Assert.Equal(kept.Id, runner.ClaimNext()!.Id);
        Assert.Equal(deleted.Id, runner.ClaimNext()!.Id);
        Assert.True(other.Delete(deleted.Id));
        Assert.Same(vanished.Task, await Task.WhenAny(vanished.Task, Task.Delay(TimeSpan.FromSeconds(10))));
        Assert.Equal(deleted.Id, await vanished.Task);
        Assert.True(runner.Complete(kept.Id, 1_800_000_000));
    }

    [PostgresFact]
    public void A_database_that_cannot_be_reached_or_is_newer_is_refused_naming_it_without_its_password()
    {
        var e = Assert.Throws<InvalidDataException>(() => new PostgresJobStore("postgres://sora:s3cret@127.0.0.1:1/nowhere?timeout=3", Lease));
        Assert.Contains("postgres://sora:***@127.0.0.1:1/nowhere", e.Message);
        Assert.DoesNotContain("s3cret", e.Message);

        string url = postgres.NewDatabase();
        Store(url).Dispose();
        using (var c = new Npgsql.NpgsqlConnection(Sora.Cli.Serve.PostgresUrl.ToConnectionString(url)))
        {
            c.Open();
            using var cmd = new Npgsql.NpgsqlCommand("UPDATE sora_schema SET version = 99", c);
            cmd.ExecuteNonQuery();
        }
        var newer = Assert.Throws<InvalidDataException>(() => new PostgresJobStore(url, Lease));
        Assert.Contains("schema version 99", newer.Message);
    }

    public void Dispose()
    {
        foreach (var s in _stores) s.Dispose();
    }
}
