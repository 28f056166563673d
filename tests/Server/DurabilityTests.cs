using System.Text.RegularExpressions;
using Sora.Cli.Serve;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>Jobs and results survive a restart, and each job completes once.</summary>
[Collection(ServerCollection.Name)]
public sealed class DurabilityTests(ServedModel model) : IDisposable
{
    private const string Prompt = "a green triangle moving left on a white background";
    private readonly string _store = TestServer.NewStoreDir();

    public void Dispose()
    {
        if (Directory.Exists(_store)) Directory.Delete(_store, recursive: true);
    }

    [Fact]
    public async Task A_killed_server_process_leaves_its_jobs_to_the_next_which_completes_each_once()
    {
        var ids = new List<string>();
        string firstLog;
        using (var first = await ServeProcess.StartAsync("--store", _store))
        {
            for (int i = 0; i < 3; i++)
            {
                var form = new MultipartFormDataContent { { new StringContent(Prompt), "prompt" }, { new StringContent("1"), "seconds" }, { new StringContent("150"), "steps" } };
                ids.Add((await TestServer.Ok(await first.Http.PostAsync("/v1/videos", form))).GetProperty("id").GetString()!);
            }
            // Kill it while the first job is being denoised: no chance to put it back in the queue.
            await TestServer.WaitAsync(first.Http, ids[0], v => v.GetProperty("progress").GetInt32() > 0, TestServer.JobTimeout);
            await first.KillAsync();
            firstLog = string.Join("\n", first.Log.Lines);
        }

        var server = await TestServer.StartAsync(model.Engine, _store);
        try
        {
            Assert.Equal(1, server.Log.Count(ids[0], "queued (picked up again"));
            foreach (var id in ids)
            {
                var video = await server.WaitAsync(id);
                Assert.Equal("completed", video.GetProperty("status").GetString());
                Assert.Equal(1, server.Log.Count(id, "completed") + Count(firstLog, id, "completed"));
                Assert.True((await server.Http.GetAsync($"/v1/videos/{id}/content")).IsSuccessStatusCode);
            }
            Assert.Contains(server.Log.Lines, l => l.Contains($"{ids[0]} in_progress", StringComparison.Ordinal) && l.Contains("attempt 2", StringComparison.Ordinal));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_stopped_server_requeues_its_running_job_and_the_next_start_completes_every_job_once()
    {
        var first = await TestServer.StartAsync(model.Engine, _store);
        var ids = new List<string>();
        for (int i = 0; i < 3; i++) ids.Add((await first.CreateAsync(("prompt", Prompt), ("seconds", "1"), ("steps", "150"))).GetProperty("id").GetString()!);
        await first.WaitAsync(ids[0], v => v.GetProperty("progress").GetInt32() > 0);
        await first.DisposeAsync();
        Assert.Equal(1, first.Log.Count(ids[0], "queued (the server is stopping"));

        var second = await TestServer.StartAsync(model.Engine, _store);
        try
        {
            foreach (var id in ids)
            {
                Assert.Equal("completed", (await second.WaitAsync(id)).GetProperty("status").GetString());
                Assert.Equal(1, first.Log.Count(id, "completed") + second.Log.Count(id, "completed"));
            }
            // The finished videos are listed by a third start too, their files still served.
            await second.DisposeAsync();
            var third = await TestServer.StartAsync(model.Engine, _store);
            await using (third)
            {
                var page = await TestServer.Ok(await third.Http.GetAsync("/v1/videos?order=asc"));
                Assert.Equal(ids, page.GetProperty("data").EnumerateArray().Select(v => v.GetProperty("id").GetString()!));
                Assert.All(page.GetProperty("data").EnumerateArray(), v => Assert.Equal("completed", v.GetProperty("status").GetString()));
                Assert.True((await third.Http.GetAsync($"/v1/videos/{ids[2]}/content?variant=thumbnail")).IsSuccessStatusCode);
                Assert.DoesNotContain(third.Log.Lines, l => l.Contains(" in_progress", StringComparison.Ordinal));
            }
        }
        finally
        {
            await second.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_second_server_on_the_same_store_is_refused()
    {
        var first = await TestServer.StartAsync(model.Engine, _store);
        try
        {
            var e = await Assert.ThrowsAsync<IOException>(() => TestServer.StartAsync(model.Engine, _store));
            Assert.Contains("in use", e.Message);
            Assert.Contains(Path.GetFullPath(_store), e.Message);
        }
        finally
        {
            await first.DisposeAsync();
        }
    }

    /// <summary>A store file that is not SQLite, cut short or with flipped bits: the server refuses to start naming
    /// the file, or starts and answers every request in the API's shape; it never crashes or hangs.</summary>
    [Fact]
    public async Task A_damaged_store_file_fails_cleanly()
    {
        Directory.CreateDirectory(_store);
        string db = Path.Combine(_store, StoreFolder.DatabaseName);
        File.WriteAllBytes(db, "this is not a database, just some text long enough to fill a header....."u8.ToArray());
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => TestServer.StartAsync(model.Engine, _store));
        Assert.Contains(db, e.Message);
        File.Delete(db);

        // A real store with two finished videos, then damaged copies of it.
        var server = await TestServer.StartAsync(model.Engine, _store);
        for (int i = 0; i < 2; i++) await server.WaitAsync((await server.CreateAsync(("prompt", Prompt), ("seconds", "1"), ("steps", "1"))).GetProperty("id").GetString()!);
        await server.DisposeAsync();
        var good = File.ReadAllBytes(db);
        var rng = new Random(12);
        var damaged = new List<byte[]> { good[..100], good[..(good.Length / 2)], good[..(good.Length - 1)] };
        for (int i = 0; i < 6; i++)
        {
            var copy = (byte[])good.Clone();
            for (int k = 0; k < 4; k++) copy[rng.Next(copy.Length)] ^= (byte)(1 << rng.Next(8));
            damaged.Add(copy);
        }
        foreach (var bytes in damaged)
        {
            File.WriteAllBytes(db, bytes);
            TestServer? started = null;
            try
            {
                started = await TestServer.StartAsync(model.Engine, _store);
            }
            catch (InvalidDataException ex)
            {
                Assert.Contains(db, ex.Message);
                continue;
            }
            await using (started)
            {
                foreach (var path in new[] { "/v1/videos", "/v1/videos?order=asc", "/healthz" })
                {
                    var response = await started.Http.GetAsync(path);
                    if (!response.IsSuccessStatusCode) await TestServer.Error(response, 500);
                }
            }
        }
    }

    private static int Count(string log, string id, string state) => Regex.Matches(log, $" {id} {state}").Count;
}
