using Sora.Native.Pipeline;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// <see cref="WanPipeline.Finish(IReadOnlyList{GenerationJob})"/>: finished jobs decoded together (clips of one size in
/// one VAE pass) give each job what finishing it alone gives, in order, and each video equals the request run alone
/// through <see cref="WanPipeline.Generate"/> within the packing tolerance. Allocations are poisoned.
/// </summary>
public sealed class BatchedFinishTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static Tensor Embeds(int seed) => Tensor.FromArray(Enumerable.Range(0, 512 * 24).Select(i => MathF.Sin(i * 0.29f + seed)).ToArray(), [512, 24]);

    [Fact]
    public void Jobs_finished_together_equal_each_finished_alone_and_each_generated_alone()
    {
        using var backend = new Sora.Tests.Text.PoisoningBackend(NewCpuBackend());
        using var pipeline = WanPipeline.Load(Path.Combine(FixtureDir, "model"), backend);
        using var a = Embeds(1);
        using var b = Embeds(2);
        using var c = Embeds(3);
        GenerationOptions[] requests =
        [
            new() { Frames = 9, Height = 32, Width = 48, Steps = 3, Guidance = 5, Seed = 11, PromptEmbeds = a, NegativePromptEmbeds = b },
            new() { Frames = 5, Height = 32, Width = 32, Steps = 3, Guidance = 1, Seed = 12, PromptEmbeds = b },
            new() { Frames = 9, Height = 32, Width = 48, Steps = 3, Guidance = 3, Seed = 13, PromptEmbeds = c, NegativePromptEmbeds = a },
            new() { Frames = 9, Height = 32, Width = 48, Steps = 3, Guidance = 5, Seed = 14, PromptEmbeds = b, NegativePromptEmbeds = c, OutputType = OutputType.Latent },
            new() { Frames = 9, Height = 32, Width = 48, Steps = 3, Guidance = 5, Seed = 15, PromptEmbeds = c, NegativePromptEmbeds = b },
        ];
        var generated = requests.Select(r =>
        {
            var result = pipeline.Generate(r);
            result.Latents?.Dispose();
            return result.Video;
        }).ToArray();

        var jobs = requests.Select(r => pipeline.Start(r)).ToList();
        try
        {
            while (jobs.Any(j => !j.IsFinished)) pipeline.Step(jobs);
            var together = pipeline.Finish(jobs);
            var alone = jobs.Select(pipeline.Finish).ToArray();
            Assert.Equal(requests.Length, together.Length);
            for (int i = 0; i < requests.Length; i++)
            {
                using (together[i].Latents)
                using (alone[i].Latents)
                    Assert.Equal(alone[i].Latents!.ToFloatArray(), together[i].Latents!.ToFloatArray());
                Assert.Equal(requests[i].Seed, together[i].Seed);
                if (requests[i].OutputType == OutputType.Latent)
                {
                    Assert.Null(together[i].Video);
                    continue;
                }
                var video = together[i].Video!;
                Assert.Equal((requests[i].Frames, requests[i].Height, requests[i].Width), (video.Frames, video.Height, video.Width));
                Assert.DoesNotContain(video.Rgb, float.IsNaN);
                double batchError = RelativeError(video.Rgb, alone[i].Video!.Rgb);
                double generateError = RelativeError(video.Rgb, generated[i]!.Rgb);
                output.WriteLine($"job {i}: against its own finish {batchError:E2}, against the request generated alone {generateError:E2}");
                Assert.True(batchError < 1e-5, $"job {i}: decoded together vs alone, relative error {batchError:E2}");
                Assert.True(generateError < 1e-4, $"job {i}: packed and decoded together vs generated alone, relative error {generateError:E2}");
            }
        }
        finally
        {
            foreach (var j in jobs) j.Dispose();
        }
    }

    [Fact]
    public void An_unfinished_job_among_finished_ones_is_refused_naming_it()
    {
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(Path.Combine(FixtureDir, "model"), backend);
        using var a = Embeds(1);
        var options = new GenerationOptions { Frames = 5, Height = 32, Width = 32, Steps = 2, Guidance = 1, Seed = 1, PromptEmbeds = a };
        using var done = pipeline.Start(options);
        using var running = pipeline.Start(options);
        pipeline.Step([done, running]);
        pipeline.Step([done]);
        var e = Assert.Throws<ArgumentException>(() => pipeline.Finish([done, running]));
        Assert.Contains("jobs[1]", e.Message);
        Assert.Contains("1 of 2 steps", e.Message);
    }
}
