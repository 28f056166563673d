using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Sora.Cli.Serve;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>Many clients at once, most of them wrong: every request answered, every kept video completed once, and
/// once the burst is over the server holds the memory it held before it.</summary>
[Collection(ServerCollection.Name)]
public sealed class LoadTests(ServedModel model)
{
    private const int Clients = 20, RequestsEach = 10;

    [Fact]
    public async Task Two_hundred_requests_from_twenty_clients_some_malformed_oversized_or_cancelled_are_all_answered()
    {
        var server = await TestServer.StartAsync(model.Engine, limits: new ServerLimits { MaxBodyBytes = 32 << 10 });
        try
        {
            // The idle level: after one job, so what a first request loads for good (caches, JIT) is in it.
            await server.WaitAsync((await server.CreateAsync(("prompt", "a red circle moving right on a blue background"), ("steps", "1"))).GetProperty("id").GetString()!);
            var idle = await IdleMemory(server);

            var created = new ConcurrentBag<string>();
            var deleted = new ConcurrentBag<string>();
            var statuses = new ConcurrentBag<int>();
            await Task.WhenAll(Enumerable.Range(0, Clients).Select(c => Task.Run(async () =>
            {
                for (int r = 0; r < RequestsEach; r++)
                {
                    try
                    {
                        var response = await Send(server, c, r, created, deleted);
                        statuses.Add((int)response.StatusCode);
                        if (!response.IsSuccessStatusCode) await TestServer.Error(response, (int)response.StatusCode);
                    }
                    catch (Exception e)
                    {
                        throw new InvalidOperationException($"client {c}, request {r}: {e.GetType().Name}: {e.Message}", e);
                    }
                }
            })));
            Assert.Equal(Clients * RequestsEach, statuses.Count);
            Assert.DoesNotContain(500, statuses);

            foreach (var id in created.Except(deleted))
            {
                Assert.Equal("completed", (await server.WaitAsync(id)).GetProperty("status").GetString());
                Assert.Equal(1, server.Log.Count(id, "completed"));
            }
            foreach (var id in deleted)
            {
                await TestServer.Error(await server.Http.GetAsync($"/v1/videos/{id}"), 404);
                Assert.Equal(0, server.Log.Count(id, "failed"));
                Assert.False(Directory.Exists(Path.Combine(server.StoreDir, "videos", id)));
            }
            var health = await TestServer.Ok(await server.Http.GetAsync("/healthz"));
            Assert.Equal(0, health.GetProperty("pending").GetInt32());
            Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(server.StoreDir, "uploads")));

            // The managed heap is the whole test process's, and other test classes run beside this one: a figure
            // above the slack may be their live objects, which come and go, while a leak of the burst's stays. So
            // the lowest of a few readings over several seconds is what is judged.
            var after = await IdleMemory(server);
            for (int reading = 1; reading < 10 && after.Managed > idle.Managed + ManagedSlack; reading++)
            {
                await Task.Delay(500);
                var again = await IdleMemory(server);
                after = (again.Device, Math.Min(after.Managed, again.Managed));
            }
            Assert.True(after.Device <= idle.Device, $"device buffers: {after.Device:N0} B after the burst, {idle.Device:N0} B idle before it");
            Assert.True(after.Managed <= idle.Managed + ManagedSlack, $"managed heap: {after.Managed:N0} B after the burst (lowest of the readings), {idle.Managed:N0} B idle before it");
        }
        finally
        {
            await server.DisposeAndDeleteStoreAsync();
        }
    }

    /// <summary>What the managed heap may keep beyond its idle level after a burst (Kestrel's and the HTTP client's pools, JIT'd code).</summary>
    private const long ManagedSlack = 24L << 20;

    /// <summary>Once the runner has nothing in flight (it trims the engine's buffers then): the engine's working bytes
    /// and the live managed heap after a full collection.</summary>
    private async Task<(long Device, long Managed)> IdleMemory(TestServer server)
    {
        var deadline = DateTime.UtcNow + TestServer.JobTimeout;
        while ((await TestServer.Ok(await server.Http.GetAsync("/healthz"))).GetProperty("pending").GetInt32() > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the server never went idle");
            await Task.Delay(50);
        }
        // The runner trims at its next turn after the last job left: wait until the figure holds still.
        long device = model.Engine.WorkingBytes;
        for (int still = 0; still < 5; device = model.Engine.WorkingBytes)
        {
            await Task.Delay(50);
            still = model.Engine.WorkingBytes == device ? still + 1 : 0;
        }
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return (device, GC.GetTotalMemory(forceFullCollection: true));
    }

    /// <summary>Request r of client c: a mix of good and bad requests of every kind the API takes.</summary>
    private static async Task<HttpResponseMessage> Send(TestServer server, int c, int r, ConcurrentBag<string> created, ConcurrentBag<string> deleted)
    {
        var http = server.Http;
        switch (r)
        {
            case 0:
                var response = await server.PostFormAsync("/v1/videos", [("prompt", $"a red circle moving right on a blue background"), ("steps", "1"), ("seed", c.ToString())]);
                var video = await TestServer.Ok(response);
                string id = video.GetProperty("id").GetString()!;
                created.Add(id);
                if (c % 3 != 0) return response;
                deleted.Add(id); // cancelled while queued or in progress
                return await http.DeleteAsync($"/v1/videos/{id}");
            case 1: return await http.PostAsync("/v1/videos", new StringContent("{\"prompt\": \"unterminated", Encoding.UTF8, "application/json"));
            case 2: return await server.PostFormAsync("/v1/videos", [("prompt", "big")], ("input_reference", "big.png", new byte[48 << 10]));
            case 3: return await http.GetAsync("/v1/videos?limit=5");
            case 4: return await http.GetAsync($"/v1/videos/video_{c}");
            case 5: return await server.PostFormAsync("/v1/videos", [("prompt", "x"), ("size", "1x1x1")]);
            case 6: return await server.PostFormAsync("/v1/videos", [("prompt", "x")], ("input_reference", "bad.png", Encoding.UTF8.GetBytes("\x89PNG not really")));
            case 7: return await http.GetAsync("/healthz");
            case 8:
                var any = created.FirstOrDefault() ?? "video_none";
                var content = await http.GetAsync($"/v1/videos/{any}/content");
                Assert.Contains(content.StatusCode, new[] { HttpStatusCode.OK, HttpStatusCode.Conflict, HttpStatusCode.NotFound });
                return content;
            default: return await http.PutAsync("/v1/videos", new StringContent("{}"));
        }
    }
}
