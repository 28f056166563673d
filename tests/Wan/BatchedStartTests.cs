using Sora.Native.Pipeline;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// <see cref="WanPipeline.Start(IReadOnlyList{GenerationOptions}, IReadOnlyList{IProgress{StepProgress}?}?, CancellationToken)"/>:
/// requests begun together (all their text prompts through the encoder in one pass) run to what each gives alone.
/// Allocations are poisoned.
/// </summary>
public sealed class BatchedStartTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void Requests_begun_together_equal_each_generated_alone()
    {
        using var backend = new Sora.Tests.Text.PoisoningBackend(NewCpuBackend());
        using var pipeline = WanPipeline.Load(Path.Combine(FixtureDir, "model"), backend);
        pipeline.KeepTextEncoder = true;
        using var given = Tensor.FromArray(Enumerable.Range(0, 512 * 24).Select(i => MathF.Cos(i * 0.13f)).ToArray(), [512, 24]);
        GenerationOptions[] requests =
        [
            new() { Prompt = "a cat walking on grass", NegativePrompt = "blurry", Frames = 5, Height = 32, Width = 32, Steps = 2, Guidance = 5, Seed = 1, OutputType = OutputType.Latent },
            new() { Prompt = "a red ball", Frames = 5, Height = 32, Width = 48, Steps = 2, Guidance = 1, Seed = 2, OutputType = OutputType.Latent },
            new() { Prompt = "waves on a beach at sunset, slow motion", Frames = 9, Height = 32, Width = 32, Steps = 3, Guidance = 4, Seed = 3, OutputType = OutputType.Latent },
            new() { PromptEmbeds = given, NegativePrompt = "static", Frames = 5, Height = 32, Width = 32, Steps = 2, Guidance = 5, Seed = 4, OutputType = OutputType.Latent },
        ];
        var alone = requests.Select(r =>
        {
            var result = pipeline.Generate(r);
            using (result.Latents) return result.Latents!.ToFloatArray();
        }).ToArray();

        var jobs = pipeline.Start(requests);
        try
        {
            Assert.Equal(requests.Length, jobs.Length);
            while (jobs.Any(j => !j.IsFinished)) pipeline.Step(jobs.Where(j => !j.IsFinished).ToList());
            var results = pipeline.Finish(jobs);
            for (int i = 0; i < requests.Length; i++)
            {
                using var latents = results[i].Latents!;
                var values = latents.ToFloatArray();
                Assert.DoesNotContain(values, float.IsNaN);
                double error = RelativeError(values, alone[i]);
                output.WriteLine($"request {i}: relative error {error:E2} against it generated alone");
                Assert.True(error < 1e-4, $"request {i}: relative error {error:E2}");
            }
        }
        finally
        {
            foreach (var j in jobs) j.Dispose();
        }
    }

    [Fact]
    public void An_invalid_request_among_valid_ones_is_refused_naming_its_option()
    {
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(Path.Combine(FixtureDir, "model"), backend);
        var good = new GenerationOptions { Prompt = "a cat", Frames = 5, Height = 32, Width = 32, Steps = 2, Guidance = 1, Seed = 1 };
        var e = Assert.Throws<ArgumentException>(() => pipeline.Start([good, good with { Frames = 6 }]));
        Assert.Equal("Frames", e.ParamName);
    }
}
