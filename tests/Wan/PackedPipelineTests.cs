using Sora.Native.Pipeline;
using Sora.Native.Video;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// Patch n' pack: requests of different sizes, lengths, step counts and modes advanced together, one transformer pass
/// per step, each equal to the same request run alone (and, for the fixture cases, to diffusers).
/// </summary>
public sealed class PackedPipelineTests
{
    private static string Wan21Model => Path.Combine(FixtureDir, "model");

    private static Tensor Embeds(int seed) => Tensor.FromArray(Enumerable.Range(0, 512 * 24).Select(i => MathF.Sin(i * 0.37f + seed)).ToArray(), [512, 24]);

    private static VideoFrames Picture(int height, int width) => new(1, height, width,
        Enumerable.Range(0, height * width * 3).Select(i => (i * 29 % 97) / 96f).ToArray());

    /// <summary>Runs the jobs packed, the i-th joining the pass at step joinAt[i] of the whole run; returns their final latents.</summary>
    private static float[][] RunPacked(WanPipeline pipeline, GenerationOptions[] requests, int[] joinAt, List<int> passSizes)
    {
        var jobs = new GenerationJob?[requests.Length];
        var results = new float[requests.Length][];
        try
        {
            for (int pass = 0; results.Any(r => r is null); pass++)
            {
                for (int i = 0; i < requests.Length; i++)
                    if (jobs[i] is null && results[i] is null && joinAt[i] <= pass) jobs[i] = pipeline.Start(requests[i]);
                var active = jobs.Where(j => j is not null).Select(j => j!).ToList();
                passSizes.Add(active.Count);
                pipeline.Step(active);
                for (int i = 0; i < requests.Length; i++)
                {
                    if (jobs[i] is not { IsFinished: true } done) continue;
                    var result = pipeline.Finish(done);
                    using (result.Latents) results[i] = result.Latents!.ToFloatArray();
                    done.Dispose();
                    jobs[i] = null;
                }
            }
            return results;
        }
        finally
        {
            foreach (var j in jobs) j?.Dispose();
        }
    }

    [Fact]
    public void Jobs_of_three_sizes_and_two_lengths_packed_equal_each_alone()
    {
        using var backend = new Sora.Tests.Text.PoisoningBackend(NewCpuBackend());
        using var pipeline = WanPipeline.Load(Wan21Model, backend);
        using var a = Embeds(1);
        using var b = Embeds(2);
        using var c = Embeds(3);
        GenerationOptions[] requests =
        [
            new() { Frames = 9, Height = 32, Width = 48, Steps = 4, Guidance = 5, Seed = 1, PromptEmbeds = a, NegativePromptEmbeds = b, OutputType = OutputType.Latent },
            new() { Frames = 5, Height = 16, Width = 32, Steps = 3, Guidance = 1, Seed = 2, PromptEmbeds = b, OutputType = OutputType.Latent },
            new() { Frames = 9, Height = 48, Width = 32, Steps = 5, Guidance = 3, Seed = 3, PromptEmbeds = c, NegativePromptEmbeds = a,
                    Image = Picture(48, 32), OutputType = OutputType.Latent },
            new() { Frames = 5, Height = 32, Width = 48, Steps = 4, Guidance = 5, Seed = 4, PromptEmbeds = c, NegativePromptEmbeds = b,
                    Video = Picture(32, 48).Concat(Picture(32, 48)).Concat(Picture(32, 48)).Concat(Picture(32, 48)).Concat(Picture(32, 48)),
                    Strength = 0.5, OutputType = OutputType.Latent },
        ];
        var alone = requests.Select(r =>
        {
            var result = pipeline.Generate(r);
            using (result.Latents) return result.Latents!.ToFloatArray();
        }).ToArray();

        var passSizes = new List<int>();
        var packed = RunPacked(pipeline, requests, joinAt: [0, 0, 2, 1], passSizes);
        Assert.Contains(4, passSizes); // all four shared some passes
        for (int i = 0; i < requests.Length; i++)
        {
            double error = RelativeError(packed[i], alone[i]);
            Console.WriteLine($"packed job {i}: relative error {error:E2} against the job alone");
            Assert.True(error < 1e-4, $"job {i}: relative error {error:E2}");
        }
    }

    [Fact]
    public void Packed_fixture_cases_match_diffusers()
    {
        // The ti2v-small text-to-video and image-to-video cases in the same passes: each still equals diffusers' output.
        string ti2v = ConditioningPipelineTests.Ti2vDir;
        var t2v = ReadAll(Path.Combine(ti2v, "t2v_case.safetensors"));
        var i2v = ReadAll(Path.Combine(ti2v, "i2v_case.safetensors"));
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(Path.Combine(ti2v, "model"), backend);
        Tensor Padded(Dictionary<string, (int[] Shape, float[] Data)> d, string name)
        {
            var padded = new float[512 * 24];
            d[name].Data.CopyTo(padded, 0);
            return Tensor.FromArray(padded, [512, 24]);
        }
        using var prompt = Padded(t2v, "prompt_embeds");
        using var negative = Padded(t2v, "negative_prompt_embeds");
        using var noise = Tensor.FromArray(t2v["latents"].Data, t2v["latents"].Shape);
        var (imageShape, image) = i2v["image"];
        var rgb = new float[image.Length];
        int plane = imageShape[2] * imageShape[3];
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < plane; p++) rgb[p * 3 + ch] = (image[ch * plane + p] + 1f) / 2f;
        var basic = new GenerationOptions
        {
            Frames = 9, Height = 64, Width = 96, Steps = 4, Guidance = 5, Latents = noise, PromptEmbeds = prompt,
            NegativePromptEmbeds = negative, OutputType = OutputType.Latent,
        };
        var results = RunPacked(pipeline, [basic, basic with { Image = new VideoFrames(1, 64, 96, rgb) }], [0, 0], []);
        Assert.True(RelativeError(results[0], t2v["expected_latents"].Data) < 1e-3);
        Assert.True(RelativeError(results[1], i2v["expected_latents"].Data) < 1e-3);
    }
}
