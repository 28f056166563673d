using System.Text.Json;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>Two <c>sora serve</c> processes on one PostgreSQL queue and one shared files folder, as on two machines.</summary>
[Collection(ServerCollection.Name)]
public sealed class PostgresServeTests(PostgresServer postgres) : IClassFixture<PostgresServer>, IDisposable
{
    private const string Prompt = "a blue square moving up on a yellow background";
    private readonly string _files = TestServer.NewStoreDir();

    public void Dispose()
    {
        if (Directory.Exists(_files)) Directory.Delete(_files, recursive: true);
    }

    /// <summary>A server on the shared database and folder; --max-batch-tokens 1 makes each run one job at a time, so both get work.</summary>
    private async Task<ServeProcess> Serve(string url, int leaseSeconds) =>
        await ServeProcess.StartAsync("--store", url, "--files", _files, "--runner-lease", leaseSeconds.ToString(), "--max-batch-tokens", "1");

    private static async Task<string> Create(ServeProcess server, int seed, int steps)
    {
        var form = new MultipartFormDataContent
        {
            { new StringContent(Prompt), "prompt" }, { new StringContent("1"), "seconds" },
            { new StringContent(steps.ToString()), "steps" }, { new StringContent(seed.ToString()), "seed" },
        };
        return (await TestServer.Ok(await server.Http.PostAsync("/v1/videos", form))).GetProperty("id").GetString()!;
    }

    private static Task<JsonElement> Wait(ServeProcess server, string id, Func<JsonElement, bool>? until = null)
        => TestServer.WaitAsync(server.Http, id, until, TimeSpan.FromSeconds(90));

    [PostgresFact]
    public async Task Two_servers_share_one_queue_each_job_runs_once_and_either_answers_for_any_job()
    {
        string url = postgres.NewDatabase();
        // A lease long enough that a busy machine never makes a live server look dead.
        using var a = await Serve(url, 30);
        using var b = await Serve(url, 30);
        var ids = new List<string>();
        for (int i = 0; i < 8; i++) ids.Add(await Create(i % 2 == 0 ? a : b, i, 30));
        for (int i = 0; i < ids.Count; i++)
        {
            string id = ids[i];
            // Asked of the server it was not posted to.
            Assert.Equal("completed", (await Wait(i % 2 == 0 ? b : a, id)).GetProperty("status").GetString());
            Assert.Equal(1, await Completions(a, b, id));
            Assert.Equal(1, a.Log.Count(id, "in_progress") + b.Log.Count(id, "in_progress"));
        }
        Assert.True(ids.Count(id => a.Log.Count(id, "completed") == 1) > 0, "server A ran no job");
        Assert.True(ids.Count(id => b.Log.Count(id, "completed") == 1) > 0, "server B ran no job");

        // Either server serves any result from the shared folder, and lists the same queue.
        string ranByA = ids.First(id => a.Log.Count(id, "completed") == 1);
        var fromB = await b.Http.GetAsync($"/v1/videos/{ranByA}/content");
        Assert.True(fromB.IsSuccessStatusCode, $"{(int)fromB.StatusCode}");
        Assert.True((await fromB.Content.ReadAsByteArrayAsync()).Length > 0);
        var listA = await TestServer.Ok(await a.Http.GetAsync("/v1/videos?order=asc&limit=100"));
        var listB = await TestServer.Ok(await b.Http.GetAsync("/v1/videos?order=asc&limit=100"));
        Assert.Equal(ids, listA.GetProperty("data").EnumerateArray().Select(v => v.GetProperty("id").GetString()!));
        Assert.Equal(listA.GetRawText(), listB.GetRawText());

        // Deleting through one server removes the job and its files for both.
        Assert.True((await b.Http.DeleteAsync($"/v1/videos/{ranByA}")).IsSuccessStatusCode);
        await TestServer.Error(await a.Http.GetAsync($"/v1/videos/{ranByA}"), 404);
        Assert.False(Directory.Exists(Path.Combine(_files, "videos", ranByA)));
        Assert.Equal(0, await a.StopAsync());
        Assert.Equal(0, await b.StopAsync());
    }

    [PostgresFact]
    public async Task A_killed_servers_jobs_are_picked_up_by_the_other_and_each_completes_once()
    {
        string url = postgres.NewDatabase();
        var a = await Serve(url, 4);
        using var b = await Serve(url, 4);
        var ids = new List<string>();
        try
        {
            // Long jobs, all given to A; B runs what A has not claimed, and A dies while it holds one.
            for (int i = 0; i < 4; i++) ids.Add(await Create(a, i, 150));
            string held = await Until(() => ids.FirstOrDefault(id => a.Log.Count(id, "in_progress") == 1));
            await Wait(a, held, v => v.GetProperty("progress").GetInt32() > 0);
            await a.KillAsync();
            foreach (var id in ids)
            {
                Assert.Equal("completed", (await Wait(b, id)).GetProperty("status").GetString());
                Assert.Equal(1, await Completions(a, b, id));
            }
            Assert.Equal(0, a.Log.Count(held, "completed"));
            Assert.Contains(b.Log.Lines, l => l.Contains($"{held} in_progress", StringComparison.Ordinal) && l.Contains("attempt 2", StringComparison.Ordinal));
        }
        finally
        {
            a.Dispose();
        }
    }

    /// <summary>
    /// How many "completed" lines both logs have for the job, once there is one: a server logs the line just after the
    /// database says completed, and its log reaches the test through a pipe, so the status can be seen first.
    /// </summary>
    private static async Task<int> Completions(ServeProcess a, ServeProcess b, string id)
    {
        int Count() => a.Log.Count(id, "completed") + b.Log.Count(id, "completed");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Count() == 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        await Task.Delay(100); // a second line, were there one, would come as soon
        return Count();
    }

    private static async Task<string> Until(Func<string?> find)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        string? found;
        while ((found = find()) is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "no job started");
            await Task.Delay(20);
        }
        return found;
    }
}
