using Sora.Cli;
using Sora.Cli.Serve;
using Sora.Kernels.Cpu;
using Sora.Native.Pipeline;
using Sora.Native.Video;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>
/// Jobs that join at the same pass begin together (one <see cref="IVideoEngine.Begin"/> call: their prompts in one
/// encoder pass), jobs that finish at the same pass are decoded together (one <see cref="IVideoEngine.Finish"/> call),
/// and each video is the same request run alone through the library (to one pixel level: clips decoded together take
/// other convolution blocking); a bad request among others fails alone.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class BatchedJobsServerTests(ServedModel model)
{
    private static readonly (string Prompt, long Seed)[] Requests =
    [
        ("a red circle moving right on a blue background", 31),
        ("a green square moving up on a black background", 32),
        ("a white triangle moving left on a red background", 33),
        ("a yellow circle growing on a green background", 34),
    ];

    [Fact]
    public async Task Jobs_joining_at_one_pass_begin_together_finish_together_and_equal_each_alone()
    {
        var engine = new GatedEngine(model.Engine);
        var server = await TestServer.StartAsync(engine);
        try
        {
            var first = (await server.CreateAsync(("prompt", Requests[0].Prompt), ("seconds", "1"), ("steps", "3"), ("seed", "31"))).GetProperty("id").GetString()!;
            // The first job holds the runner in its first pass while the others queue: they begin together at the next pass.
            Assert.True(engine.Entered.Wait(TestServer.JobTimeout), "the first job never reached its first pass");
            var ids = new List<string> { first };
            foreach (var (prompt, seed) in Requests.Skip(1))
                ids.Add((await server.CreateAsync(("prompt", prompt), ("seconds", "1"), ("steps", "3"), ("seed", seed.ToString()))).GetProperty("id").GetString()!);
            engine.Gate.Set();
            var videos = new List<System.Text.Json.JsonElement>();
            foreach (var id in ids) videos.Add(await server.WaitAsync(id));

            lock (engine.BeginSizes) Assert.Equal([1, Requests.Length - 1], engine.BeginSizes);
            lock (engine.FinishSizes) Assert.Equal([1, Requests.Length - 1], engine.FinishSizes);
            using var backend = new CpuBackend();
            using var pipeline = WanPipeline.Load(ModelLocator.Resolve(null), backend);
            for (int i = 0; i < ids.Count; i++)
            {
                Assert.Equal("completed", videos[i].GetProperty("status").GetString());
                var served = VideoInput.ReadClip(Path.Combine(server.StoreDir, "videos", ids[i], StoreFolder.FramesName));
                var alone = pipeline.Generate(pipeline.Defaults.Options(Requests[i].Prompt) with { Seed = Requests[i].Seed, Steps = 3, Frames = served.Frames });
                alone.Latents?.Dispose();
                Assert.Equal((alone.Video!.Frames, alone.Video.Height, alone.Video.Width), (served.Frames, served.Height, served.Width));
                // Clips decoded together take other convolution blocking than one alone (rounding-level differences,
                // within the 1e-4 of a packed job): a pixel may round to the next level, never further.
                for (int f = 0; f < served.Frames; f++)
                {
                    byte[] a = alone.Video.FrameBytes(f), b = served.FrameBytes(f);
                    Assert.Equal(a.Length, b.Length);
                    int worst = Enumerable.Range(0, a.Length).Max(k => Math.Abs(a[k] - b[k]));
                    Assert.True(worst <= 1, $"{ids[i]} frame {f}: a pixel {worst} levels from the clip made alone");
                }
            }
        }
        finally
        {
            engine.Gate.Set();
            await server.DisposeAndDeleteStoreAsync();
        }
    }

    [Fact]
    public void A_request_the_model_cannot_run_fails_alone_and_the_others_begin()
    {
        var good = new JobSpec { Kind = JobKind.Create, Prompt = Requests[0].Prompt, Frames = 9, Width = 32, Height = 32, Steps = 2, Guidance = 5, Seed = 1 };
        var progress = new Progress<StepProgress>();
        var begun = model.Engine.Begin([new(good, new(null, null), progress), new(good with { Frames = 6 }, new(null, null), progress), new(good with { Seed = 2 }, new(null, null), progress)]);
        try
        {
            Assert.Equal(3, begun.Count);
            Assert.NotNull(begun[0].Job);
            Assert.NotNull(begun[2].Job);
            Assert.Null(begun[1].Job);
            var error = Assert.IsType<ArgumentException>(begun[1].Error);
            Assert.Equal("Frames", error.ParamName);
        }
        finally
        {
            foreach (var b in begun) b.Job?.Dispose();
        }
    }
}
