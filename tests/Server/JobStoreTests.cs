using Sora.Cli.Serve;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>What every job store does alike: the SQLite file, and PostgreSQL where it is installed.</summary>
public sealed class JobStoreTests(PostgresServer postgres) : IClassFixture<PostgresServer>, IDisposable
{
    private readonly List<IJobStore> _stores = [];
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sora-store-" + Guid.NewGuid().ToString("N"));

    public static TheoryData<string> Kinds()
    {
        var kinds = new TheoryData<string> { "sqlite" };
        if (PostgresServer.BinDir() is not null || Environment.GetEnvironmentVariable("SORA_REQUIRE_POSTGRES") == "1") kinds.Add("postgres");
        return kinds;
    }

    private IJobStore NewStore(string kind)
    {
        Directory.CreateDirectory(_dir);
        IJobStore store = kind == "sqlite"
            ? new SqliteJobStore(Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".db"))
            : new PostgresJobStore(postgres.NewDatabase(), TimeSpan.FromSeconds(20));
        _stores.Add(store);
        return store;
    }

    public static VideoJob Job(int i, string prompt = "a red circle moving right on a blue background") => new()
    {
        Id = $"video_{i:D4}_{Guid.NewGuid():N}",
        Status = JobStatus.Queued,
        CreatedAt = 1_700_000_000 + i,
        Model = "sora-native-test",
        Prompt = prompt,
        Seconds = "1",
        Size = "32x32",
        Spec = new JobSpec { Kind = JobKind.Create, Prompt = prompt, Frames = 9, Width = 32, Height = 32, Steps = 2, Guidance = 5, Seed = i },
    };

    [Theory, MemberData(nameof(Kinds))]
    public void Jobs_round_trip_and_list_in_creation_order_with_cursors_both_ways(string kind)
    {
        var store = NewStore(kind);
        var jobs = Enumerable.Range(0, 5).Select(i => Job(i, $"prompt ‘{i}’ with ünïcode")).ToList();
        foreach (var j in jobs) Assert.True(store.TryAdd(j, 100));
        var back = store.Get(jobs[3].Id)!;
        Assert.Equal(jobs[3] with { Spec = back.Spec }, back);
        Assert.Equal(jobs[3].Spec, back.Spec);
        Assert.Null(store.Get("video_missing"));

        Assert.Equal(jobs.Select(j => j.Id).Reverse(), store.List(null, 10, ascending: false)!.Select(j => j.Id));
        Assert.Equal(jobs.Skip(2).Take(2).Select(j => j.Id), store.List(jobs[1].Id, 2, ascending: true)!.Select(j => j.Id));
        Assert.Equal([jobs[1].Id, jobs[0].Id], store.List(jobs[2].Id, 10, ascending: false)!.Select(j => j.Id));
        Assert.Null(store.List("video_missing", 10, ascending: true));
    }

    [Theory, MemberData(nameof(Kinds))]
    public void The_queue_refuses_a_job_beyond_its_bound_and_counts_pending_jobs(string kind)
    {
        var store = NewStore(kind);
        Assert.True(store.TryAdd(Job(0), 2));
        Assert.True(store.TryAdd(Job(1), 2));
        Assert.False(store.TryAdd(Job(2), 2));
        Assert.Equal(2, store.PendingCount());
        var claimed = store.ClaimNext()!;
        Assert.True(store.Complete(claimed.Id, 1_800_000_000));
        Assert.Equal(1, store.PendingCount());
        Assert.True(store.TryAdd(Job(3), 2));
    }

    [Theory, MemberData(nameof(Kinds))]
    public void Jobs_are_claimed_oldest_first_and_change_state_only_from_in_progress(string kind)
    {
        var store = NewStore(kind);
        var jobs = Enumerable.Range(0, 4).Select(i => Job(i)).ToList();
        foreach (var j in jobs) Assert.True(store.TryAdd(j, 100));

        var first = store.ClaimNext()!;
        Assert.Equal(jobs[0].Id, first.Id);
        Assert.Equal((JobStatus.InProgress, 1), (first.Status, first.Attempts));
        store.SetProgress(first.Id, 42);
        Assert.Equal(42, store.Get(first.Id)!.Progress);
        Assert.True(store.Complete(first.Id, 1_800_000_001));
        Assert.False(store.Complete(first.Id, 1_800_000_002));
        var done = store.Get(first.Id)!;
        Assert.Equal((JobStatus.Completed, 100, 1_800_000_001L), (done.Status, done.Progress, done.CompletedAt!.Value));
        store.SetProgress(first.Id, 7);
        Assert.Equal(100, store.Get(first.Id)!.Progress);

        var second = store.ClaimNext()!;
        Assert.Equal(jobs[1].Id, second.Id);
        store.Requeue(second.Id);
        Assert.Equal(JobStatus.Queued, store.Get(second.Id)!.Status);
        var again = store.ClaimNext()!;
        Assert.Equal((jobs[1].Id, 2), (again.Id, again.Attempts));
        Assert.True(store.Fail(again.Id, new JobError("generation_failed", "out of ‘memory’"), 1_800_000_003));
        Assert.Equal(new JobError("generation_failed", "out of ‘memory’"), store.Get(again.Id)!.Error);
        Assert.False(store.Complete(again.Id, 1_800_000_004));

        var third = store.ClaimNext()!;
        Assert.True(store.Delete(third.Id));
        Assert.False(store.Delete(third.Id));
        Assert.False(store.Complete(third.Id, 1_800_000_005));
        Assert.Equal(jobs[3].Id, store.ClaimNext()!.Id);
        Assert.Null(store.ClaimNext());
    }

    public void Dispose()
    {
        foreach (var s in _stores) s.Dispose();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }
}
