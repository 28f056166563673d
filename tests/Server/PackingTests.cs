using Sora.Cli;
using Sora.Cli.Serve;
using Sora.Kernels.Cpu;
using Sora.Native.Pipeline;
using Sora.Native.Video;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>
/// Continuous batching in the server: jobs of three sizes and two durations submitted at once share the runner's
/// packed passes, and each video is exactly the same request run alone through the library; a token budget makes
/// the jobs beyond it wait.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class PackingTests(ServedModel model)
{
    private const string Prompt = "a red circle moving right on a blue background";

    private static readonly (string Size, string Seconds, long Seed)[] Mixed =
        [("32x32", "1", 21), ("64x32", "0.5", 22), ("32x64", "1", 23), ("32x32", "0.5", 24), ("64x64", "1", 25)];

    private static async Task<List<string>> SubmitAll(TestServer server) =>
        (await Task.WhenAll(Mixed.Select(async m => (await server.CreateAsync(("prompt", Prompt), ("size", m.Size), ("seconds", m.Seconds),
            ("steps", Steps), ("seed", m.Seed.ToString()))).GetProperty("id").GetString()!))).ToList();

    private const string Steps = "30";

    [Fact]
    public async Task Jobs_of_three_sizes_and_two_durations_run_packed_and_equal_each_alone()
    {
        // The first pass is held until every request is in: they arrive one by one, and on a busy machine the first
        // jobs could otherwise finish before the last arrive.
        var engine = new GatedEngine(model.Engine);
        var server = await TestServer.StartAsync(engine);
        try
        {
            var submitted = SubmitAll(server);
            Assert.True(engine.Entered.Wait(TestServer.JobTimeout), "no job reached its first pass");
            var ids = await submitted;
            engine.Gate.Set();
            var videos = new List<System.Text.Json.JsonElement>();
            foreach (var id in ids) videos.Add(await server.WaitAsync(id));

            // They were in flight together: the first may have begun alone, the others joined it at its second pass.
            int inFlight = 0, most = 0;
            foreach (var line in server.Log.Lines)
            {
                if (!ids.Any(id => line.Contains(id, StringComparison.Ordinal))) continue;
                if (line.Contains(" in_progress", StringComparison.Ordinal)) most = Math.Max(most, ++inFlight);
                if (line.Contains(" completed", StringComparison.Ordinal)) inFlight--;
            }
            Assert.True(most == Mixed.Length, $"at most {most} of {Mixed.Length} jobs were in flight together");

            using var backend = new CpuBackend();
            using var pipeline = WanPipeline.Load(ModelLocator.Resolve(null), backend);
            for (int i = 0; i < ids.Count; i++)
            {
                Assert.Equal("completed", videos[i].GetProperty("status").GetString());
                string[] size = videos[i].GetProperty("size").GetString()!.Split('x');
                var served = VideoInput.ReadClip(Path.Combine(server.StoreDir, "videos", ids[i], StoreFolder.FramesName));
                var alone = pipeline.Generate(pipeline.Defaults.Options(Prompt) with
                {
                    Seed = Mixed[i].Seed, Steps = int.Parse(Steps), Width = int.Parse(size[0]), Height = int.Parse(size[1]), Frames = served.Frames,
                });
                alone.Latents?.Dispose();
                Assert.Equal((alone.Video!.Frames, alone.Video.Height, alone.Video.Width), (served.Frames, served.Height, served.Width));
                for (int f = 0; f < served.Frames; f++) Assert.Equal(alone.Video.FrameBytes(f), served.FrameBytes(f));
            }
            Assert.Equal(4, videos.Select(v => v.GetProperty("size").GetString()).Distinct().Count());
            Assert.Equal(2, videos.Select(v => v.GetProperty("seconds").GetString()).Distinct().Count());
        }
        finally
        {
            await server.DisposeAndDeleteStoreAsync();
        }
    }

    [Fact]
    public async Task A_token_budget_keeps_the_jobs_beyond_it_waiting()
    {
        // 24 rows per guided 32x32 clip of 9 frames: a budget of 30 lets one job in at a time.
        var server = await TestServer.StartAsync(model.Engine, limits: new ServerLimits { MaxBatchTokens = 30 });
        try
        {
            var ids = new List<string>();
            for (int i = 0; i < 3; i++)
                ids.Add((await server.CreateAsync(("prompt", Prompt), ("seconds", "1"), ("steps", "3"), ("seed", i.ToString()))).GetProperty("id").GetString()!);
            foreach (var id in ids) Assert.Equal("completed", (await server.WaitAsync(id)).GetProperty("status").GetString());
            var lines = server.Log.Lines.ToList();
            for (int i = 1; i < ids.Count; i++)
            {
                int began = lines.FindIndex(l => l.Contains($"{ids[i]} in_progress", StringComparison.Ordinal));
                int previousDone = lines.FindIndex(l => l.Contains($"{ids[i - 1]} completed", StringComparison.Ordinal));
                Assert.True(began > previousDone, $"job {i} began before job {i - 1} finished");
            }
        }
        finally
        {
            await server.DisposeAndDeleteStoreAsync();
        }
    }
}
