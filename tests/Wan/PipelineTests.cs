using Sora.Native.Pipeline;
using Sora.Native.Text;
using Sora.Runtime;
using Sora.Tests.Text;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>WanPipeline end to end on the fixture model against diffusers' WanPipeline outputs.</summary>
public sealed class PipelineTests
{
    private static string ModelDir => Path.Combine(FixtureDir, "model");

    /// <summary>The fixture's video [1, F, 3, H, W] as [F, H, W, 3] (the layout of VideoFrames).</summary>
    private static float[] ToFrameLayout(float[] fchw, int[] shape)
    {
        int f = shape[1], c = shape[2], h = shape[3], w = shape[4];
        var result = new float[fchw.Length];
        for (int fi = 0; fi < f; fi++)
            for (int ci = 0; ci < c; ci++)
                for (int p = 0; p < h * w; p++)
                    result[((long)fi * h * w + p) * c + ci] = fchw[((long)fi * c + ci) * h * w + p];
        return result;
    }

    private static GenerationOptions FixtureSize => new() { Frames = 9, Height = 32, Width = 48, Steps = 4, Guidance = 5.0 };

    [Fact]
    public void Pipeline_case_matches_diffusers_latents_and_video()
    {
        var data = ReadAll(Path.Combine(FixtureDir, "pipeline_case.safetensors"));
        using var backend = new PoisoningBackend(NewCpuBackend());
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var latents = Tensor.FromArray(data["latents"].Data, data["latents"].Shape);
        using var prompt = Tensor.FromArray(data["prompt_embeds"].Data, data["prompt_embeds"].Shape);
        using var negative = Tensor.FromArray(data["negative_prompt_embeds"].Data, data["negative_prompt_embeds"].Shape);
        var progress = new List<StepProgress>();
        var result = pipeline.Generate(FixtureSize with { Latents = latents, PromptEmbeds = prompt, NegativePromptEmbeds = negative },
            new SynchronousProgress(progress));
        using var final = result.Latents!;

        Assert.Equal(data["expected_latents"].Shape[1..], final.Shape);
        double latentError = RelativeError(final.ToFloatArray(), data["expected_latents"].Data);
        var video = result.Video!;
        var expectedVideo = data["expected_video"];
        Assert.Equal((9, 32, 48), (video.Frames, video.Height, video.Width));
        double videoError = RelativeError(video.Rgb, ToFrameLayout(expectedVideo.Data, expectedVideo.Shape));
        Console.WriteLine($"pipeline_case: latents relative error {latentError:E2}, video {videoError:E2}");
        Assert.True(latentError < 1e-3, $"latents relative error {latentError:E2}");
        Assert.True(videoError < 1e-3, $"video relative error {videoError:E2}");
        Assert.Equal([1, 2, 3, 4], progress.Select(p => p.Step));
        Assert.All(progress, p => Assert.Equal(4, p.TotalSteps));
        Assert.Null(result.Seed);
    }

    [Fact]
    public void Prompt_case_matches_diffusers_from_text()
    {
        var data = TextFixtures.ReadSafetensors(Path.Combine(FixtureDir, "prompt_case.safetensors"));
        var texts = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDir, "prompt_case.json"))).RootElement;
        string prompt = texts.GetProperty("prompt").GetString()!, negativePrompt = texts.GetProperty("negative_prompt").GetString()!;

        // The ids the pipeline feeds the encoder (cleaned text, </s> appended) are the reference's.
        var tokenizer = SentencePieceTokenizer.Load(Path.Combine(ModelDir, "tokenizer"));
        Assert.Equal(data["prompt_ids"].Values.Select(v => (int)v), tokenizer.EncodeForModel(PromptText.Clean(prompt)));
        Assert.Equal(data["negative_ids"].Values.Select(v => (int)v), tokenizer.EncodeForModel(PromptText.Clean(negativePrompt)));

        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var latents = Tensor.FromArray(data["latents"].Values.Select(v => (float)v).ToArray(), data["latents"].Shape);
        var result = pipeline.Generate(FixtureSize with { Latents = latents, Prompt = prompt, NegativePrompt = negativePrompt });
        using var final = result.Latents!;
        double latentError = TextFixtures.RelativeError(final.ToFloatArray(), data["expected_latents"].Values);
        var expectedVideo = ToFrameLayout(data["expected_video"].Values.Select(v => (float)v).ToArray(), data["expected_video"].Shape);
        double videoError = RelativeError(result.Video!.Rgb, expectedVideo);
        Console.WriteLine($"prompt_case: latents relative error {latentError:E2}, video {videoError:E2}");
        Assert.True(latentError < 1e-3, $"latents relative error {latentError:E2}");
        Assert.True(videoError < 1e-3, $"video relative error {videoError:E2}");
    }

    [Fact]
    public void Euler_without_guidance_is_one_velocity_step_of_the_prompt_alone()
    {
        var data = ReadAll(Path.Combine(FixtureDir, "pipeline_case.safetensors"));
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var latents = Tensor.FromArray(data["latents"].Data, data["latents"].Shape[1..]);
        using var prompt = Tensor.FromArray(data["prompt_embeds"].Data, data["prompt_embeds"].Shape[1..]);
        var steps = new List<StepInfo>();
        var result = pipeline.Generate(FixtureSize with
        {
            Steps = 1, Guidance = 1.0, Scheduler = "euler", Latents = latents, PromptEmbeds = prompt,
            OutputType = OutputType.Latent, OnStep = steps.Add,
        });
        using var final = result.Latents!;
        Assert.Null(result.Video);

        // Euler with one step from σ₀ = 1 to 0: x − v(x, 1000).
        var info = Assert.Single(steps);
        Assert.Equal(1000f, info.Timestep);
        Assert.Equal(0f, info.Sigma);
        using var v = pipeline.Transformer.Forward(latents, 1000f, prompt);
        var x = latents.ToFloatArray();
        var expected = v.ToFloatArray().Select((vi, j) => x[j] - vi).ToArray();
        Assert.True(RelativeError(final.ToFloatArray(), expected) < 1e-6);
    }

    [Fact]
    public void A_seed_fixes_the_noise()
    {
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var prompt = Tensor.FromArray(new float[512 * 24], [512, 24]);
        var options = FixtureSize with { Steps = 1, Guidance = 1.0, PromptEmbeds = prompt, OutputType = OutputType.Latent };
        var a = pipeline.Generate(options with { Seed = 7 });
        var b = pipeline.Generate(options with { Seed = 7 });
        var c = pipeline.Generate(options with { Seed = 8 });
        using (a.Latents) using (b.Latents) using (c.Latents)
        {
            Assert.Equal(7, a.Seed);
            Assert.Equal(a.Latents!.ToFloatArray(), b.Latents!.ToFloatArray());
            Assert.NotEqual(a.Latents!.ToFloatArray(), c.Latents!.ToFloatArray());
        }
    }

    [Fact]
    public void Gaussian_noise_has_unit_normal_statistics()
    {
        var x = new GaussianNoise(123).Sample(200_001);
        double mean = x.Average(v => (double)v);
        double variance = x.Sum(v => (v - mean) * (v - mean)) / x.Length;
        double fourth = x.Sum(v => Math.Pow(v - mean, 4)) / x.Length;
        Assert.InRange(mean, -0.01, 0.01);
        Assert.InRange(variance, 0.98, 1.02);
        Assert.InRange(fourth, 2.9, 3.1); // kurtosis of a normal distribution
        Assert.All(x, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(x.Take(10), new GaussianNoise(123).Sample(10));
    }

    [Fact]
    public void Cancellation_stops_between_steps()
    {
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var prompt = Tensor.FromArray(new float[512 * 24], [512, 24]);
        using var cts = new CancellationTokenSource();
        int seen = 0;
        var options = FixtureSize with
        {
            Steps = 5, Seed = 1, PromptEmbeds = prompt, NegativePromptEmbeds = prompt,
            OnStep = s => { seen = s.Step; if (s.Step == 2) cts.Cancel(); },
        };
        Assert.ThrowsAny<OperationCanceledException>(() => pipeline.Generate(options, null, cts.Token));
        Assert.Equal(2, seen);
    }

    public static TheoryData<string, Func<GenerationOptions, GenerationOptions>> BadOptions => new()
    {
        { "Frames", o => o with { Frames = 8 } },
        { "Frames", o => o with { Frames = 0 } },
        { "Height", o => o with { Height = 40 } },
        { "Width", o => o with { Width = 0 } },
        { "Steps", o => o with { Steps = 0 } },
        { "Guidance", o => o with { Guidance = double.NaN } },
        { "Scheduler", o => o with { Scheduler = "heun" } },
        { "Latents", o => o with { Latents = Tensor.ZerosHost(DType.F32, 4, 3, 4, 8) } },
        { "PromptEmbeds", o => o with { PromptEmbeds = Tensor.ZerosHost(DType.F32, 512, 25) } },
        { "NegativePromptEmbeds", o => o with { NegativePromptEmbeds = Tensor.ZerosHost(DType.F32, 2, 512, 24) } },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Invalid_options_name_the_option(string option, Func<GenerationOptions, GenerationOptions> change)
    {
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var prompt = Tensor.FromArray(new float[512 * 24], [512, 24]);
        var options = change(FixtureSize with { Steps = 1, PromptEmbeds = prompt, NegativePromptEmbeds = prompt });
        var ex = Assert.Throws<ArgumentException>(() => pipeline.Generate(options));
        Assert.Equal(option, ex.ParamName);
        Assert.Contains(option, ex.Message);
    }

    /// <summary>Records reports on the reporting thread (Progress&lt;T&gt; would post them to the thread pool).</summary>
    private sealed class SynchronousProgress(List<StepProgress> sink) : IProgress<StepProgress>
    {
        public void Report(StepProgress value) => sink.Add(value);
    }
}
