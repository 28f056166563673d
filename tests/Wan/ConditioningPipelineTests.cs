using Sora.Native.Pipeline;
using Sora.Native.Video;
using Sora.Runtime;
using Sora.Tests.Text;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// The conditioned pipelines on the Wan2.2-TI2V-style fixture model (tests/fixtures/ti2v-small) against diffusers'
/// WanPipeline / WanImageToVideoPipeline (expand_timesteps) / WanVideoToVideoPipeline outputs: text to video, image
/// to video, video to video and extension, each within 1e-3 in latents and video.
/// </summary>
public sealed class ConditioningPipelineTests
{
    public static string Ti2vDir => Path.Combine(AppContext.BaseDirectory, "fixtures", "ti2v-small");
    private static string ModelDir => Path.Combine(Ti2vDir, "model");

    /// <summary>case.json: 9 frames of 96×64, 4 UniPC steps (flow shift 5), guidance 5, strength 0.6, 5 extension frames.</summary>
    private static GenerationOptions FixtureSize => new() { Frames = 9, Height = 64, Width = 96, Steps = 4, Guidance = 5.0 };

    private sealed record Case(Dictionary<string, (int[] Shape, float[] Data)> Data)
    {
        public static Case Read(string name) => new(ReadAll(Path.Combine(Ti2vDir, name + ".safetensors")));
        public Tensor Host(string name) => Tensor.FromArray(Data[name].Data, Data[name].Shape);

        /// <summary>Embeddings of the real rows padded with zero rows to 512, as the pipeline builds them from text.</summary>
        public Tensor Padded(string name)
        {
            var (shape, data) = Data[name];
            var padded = new float[WanPipeline.TextLength * shape[2]];
            data.CopyTo(padded, 0);
            return Tensor.FromArray(padded, [WanPipeline.TextLength, shape[2]]);
        }
    }

    /// <summary>A [1, 3, F, H, W] (or [1, 3, H, W]) tensor in [−1, 1] as frames in [0, 1].</summary>
    private static VideoFrames ToFrames(float[] planes, int[] shape)
    {
        int f = shape.Length == 5 ? shape[2] : 1, h = shape[^2], w = shape[^1];
        long plane = (long)f * h * w;
        var rgb = new float[plane * 3];
        for (int c = 0; c < 3; c++)
            for (long p = 0; p < plane; p++)
                rgb[p * 3 + c] = (planes[c * plane + p] + 1f) / 2f;
        return new VideoFrames(f, h, w, rgb);
    }

    /// <summary>The fixture's video [1, F, 3, H, W] as [F, H, W, 3].</summary>
    private static float[] FrameLayout(float[] fchw, int[] shape)
    {
        int f = shape[1], h = shape[3], w = shape[4];
        var result = new float[fchw.Length];
        for (int fi = 0; fi < f; fi++)
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < h * w; p++)
                    result[((long)fi * h * w + p) * 3 + c] = fchw[((long)fi * 3 + c) * h * w + p];
        return result;
    }

    private static (double Latents, double Video) Run(IBackend backend, Case c, string noise, Func<GenerationOptions, GenerationOptions> mode)
    {
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var latents = c.Host(noise);
        using var prompt = c.Padded("prompt_embeds");
        using var negative = c.Padded("negative_prompt_embeds");
        var result = pipeline.Generate(mode(FixtureSize with { Latents = latents, PromptEmbeds = prompt, NegativePromptEmbeds = negative }));
        using var final = result.Latents!;
        Assert.Equal(c.Data["expected_latents"].Shape[1..], final.Shape);
        double latentError = RelativeError(final.ToFloatArray(), c.Data["expected_latents"].Data);
        var (videoShape, video) = c.Data["expected_video"];
        Assert.Equal((9, 64, 96), (result.Video!.Frames, result.Video.Height, result.Video.Width));
        double videoError = RelativeError(result.Video.Rgb, FrameLayout(video, videoShape));
        return (latentError, videoError);
    }

    private static void AssertClose(string name, (double Latents, double Video) error)
    {
        Console.WriteLine($"{name}: latents relative error {error.Latents:E2}, video {error.Video:E2}");
        Assert.True(error.Latents < 1e-3, $"{name}: latents relative error {error.Latents:E2}");
        Assert.True(error.Video < 1e-3, $"{name}: video relative error {error.Video:E2}");
    }

    private static VideoFrames FixtureClip()
    {
        var (shape, data) = Case.Read("v2v_case").Data["video"];
        return ToFrames(data, shape);
    }

    [Fact]
    public void Text_to_video_matches_diffusers()
    {
        using var backend = new PoisoningBackend(NewCpuBackend());
        AssertClose("t2v_case", Run(backend, Case.Read("t2v_case"), "latents", o => o));
    }

    [Fact]
    public void Image_to_video_matches_diffusers()
    {
        var c = Case.Read("i2v_case");
        var image = ToFrames(c.Data["image"].Data, c.Data["image"].Shape);
        using var backend = new PoisoningBackend(NewCpuBackend());
        AssertClose("i2v_case", Run(backend, c, "latents", o => o with { Image = image }));
    }

    [Fact]
    public void Image_to_video_latents_match_diffusers_on_the_ilgpu_cpu_accelerator()
    {
        // The GPU kernels emulated on the CPU (~0.1 GFLOP/s): the image encode and the conditioned loop, not the decode.
        var c = Case.Read("i2v_case");
        var image = ToFrames(c.Data["image"].Data, c.Data["image"].Shape);
        using var backend = Sora.Kernels.Gpu.IlgpuBackend.CreateCpu();
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var latents = c.Host("latents");
        using var prompt = c.Padded("prompt_embeds");
        using var negative = c.Padded("negative_prompt_embeds");
        var result = pipeline.Generate(FixtureSize with
        {
            Latents = latents, PromptEmbeds = prompt, NegativePromptEmbeds = negative, Image = image, OutputType = OutputType.Latent,
        });
        using var final = result.Latents!;
        double error = RelativeError(final.ToFloatArray(), c.Data["expected_latents"].Data);
        Console.WriteLine($"i2v_case (ilgpu-cpu): latents relative error {error:E2}");
        Assert.True(error < 1e-3, $"latents relative error {error:E2}");
    }

    [Fact]
    public void Video_to_video_matches_diffusers()
    {
        var c = Case.Read("v2v_case");
        using var backend = new PoisoningBackend(NewCpuBackend());
        AssertClose("v2v_case", Run(backend, c, "noise", o => o with { Video = FixtureClip(), VideoRole = VideoRole.Edit, Strength = 0.6 }));
    }

    [Fact]
    public void Video_to_video_runs_the_kept_timesteps_of_diffusers()
    {
        var c = Case.Read("v2v_case");
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var noise = c.Host("noise");
        using var prompt = c.Padded("prompt_embeds");
        var seen = new List<float>();
        var result = pipeline.Generate(FixtureSize with
        {
            Latents = noise, PromptEmbeds = prompt, Guidance = 1, OutputType = OutputType.Latent,
            Video = FixtureClip(), Strength = 0.6, OnStep = s => seen.Add(s.Timestep),
        });
        result.Latents!.Dispose();
        Assert.Equal(c.Data["kept_timesteps"].Data, seen);
    }

    [Fact]
    public void Extension_matches_diffusers()
    {
        var c = Case.Read("extend_case");
        using var backend = new PoisoningBackend(NewCpuBackend());
        AssertClose("extend_case", Run(backend, c, "noise", o => o with { Video = FixtureClip(), VideoRole = VideoRole.Extend, ExtendFrames = 5 }));
    }

    [Fact]
    public void Known_frames_stay_the_encoded_image()
    {
        // Image to video keeps latent frame 0 at the encoded image whatever the prompt: two prompts, same frame 0.
        var c = Case.Read("i2v_case");
        var image = ToFrames(c.Data["image"].Data, c.Data["image"].Shape);
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var noise = c.Host("latents");
        using var a = c.Padded("prompt_embeds");
        using var b = c.Padded("negative_prompt_embeds");
        var options = FixtureSize with { Latents = noise, Guidance = 1, Steps = 2, OutputType = OutputType.Latent, Image = image };
        var first = pipeline.Generate(options with { PromptEmbeds = a });
        var second = pipeline.Generate(options with { PromptEmbeds = b });
        using (first.Latents)
        using (second.Latents)
        {
            var x = first.Latents!.ToFloatArray();
            var y = second.Latents!.ToFloatArray();
            int frame = 4 * 6, frames = 3; // h·w of a latent frame; [C, T, h, w]
            for (int ch = 0; ch < 4; ch++)
                for (int p = 0; p < frame; p++)
                    Assert.Equal(x[(ch * frames) * frame + p], y[(ch * frames) * frame + p]);
            Assert.True(RelativeError(y, x) > 1e-3, "the unknown frames should follow the prompt");
        }
    }

    public static TheoryData<string, Func<GenerationOptions, GenerationOptions>> BadConditioning => new()
    {
        { "Image", o => o with { Image = Frames(1), Video = Frames(9) } },
        { "Image", o => o with { Image = Frames(2) } },
        { "Strength", o => o with { Video = Frames(9), Strength = 0 } },
        { "Strength", o => o with { Video = Frames(9), Strength = 1.5 } },
        { "Strength", o => o with { Video = Frames(9), Strength = double.NaN } },
        { "Strength", o => o with { Video = Frames(9), Strength = 0.1 } }, // ⌊4·0.1⌋ = 0 steps
        { "Video", o => o with { Video = Frames(5) } },
        { "ExtendFrames", o => o with { Video = Frames(9), VideoRole = VideoRole.Extend, ExtendFrames = 4 } },
        { "ExtendFrames", o => o with { Video = Frames(9), VideoRole = VideoRole.Extend, ExtendFrames = 9 } },
        { "ExtendFrames", o => o with { Video = Frames(3), VideoRole = VideoRole.Extend, ExtendFrames = 5 } },
        { "Width", o => o with { Width = 80 } }, // a multiple of 16 but not of 32 (VAE 16 × patch 2)
        { "Frames", o => o with { Frames = 401, Height = 16384, Width = 16384 } },
    };

    private static VideoFrames Frames(int count) => new(count, 8, 8, Enumerable.Range(0, count * 8 * 8 * 3).Select(i => i % 7 / 7f).ToArray());

    [Theory]
    [MemberData(nameof(BadConditioning))]
    public void Invalid_conditioning_names_the_option(string option, Func<GenerationOptions, GenerationOptions> change)
    {
        using var backend = new PoisoningBackend(NewCpuBackend());
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var prompt = Tensor.FromArray(new float[512 * 24], [512, 24]);
        var steps = 0;
        var options = change(FixtureSize with { PromptEmbeds = prompt, NegativePromptEmbeds = prompt, OnStep = _ => steps++ });
        var ex = Assert.Throws<ArgumentException>(() => pipeline.Generate(options));
        Assert.Equal(option, ex.ParamName);
        Assert.Equal(0, steps);
    }

    [Fact]
    public void A_request_too_large_for_the_device_is_refused_with_the_estimate()
    {
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var prompt = Tensor.FromArray(new float[512 * 24], [512, 24]);
        // 41 frames of 4096×4096 fit one array (2.06e9 values) but not the 24 GiB of this machine.
        var options = FixtureSize with { Frames = 41, Height = 4096, Width = 4096, PromptEmbeds = prompt, NegativePromptEmbeds = prompt };
        var estimate = pipeline.Estimate(options, pipeline.LatentShape(options), guided: true);
        Assert.True(estimate.TotalBytes > backend.Device.MemoryBytes, $"estimate {estimate.TotalBytes} B");
        var ex = Assert.Throws<ArgumentException>(() => pipeline.Generate(options));
        Assert.Contains("GiB", ex.Message);
        Assert.Contains(backend.Device.Name, ex.Message);
    }
}

/// <summary>The same conditioning on a Wan2.1 model (tests/fixtures/wan-small: 8× VAE, expand_timesteps false).</summary>
public sealed class Wan21ConditioningTests
{
    private static string ModelDir => Path.Combine(FixtureDir, "model");

    private static VideoFrames Gradient(int frames, int height, int width) => new(frames, height, width,
        Enumerable.Range(0, frames * height * width * 3).Select(i => (i * 37 % 101) / 100f).ToArray());

    [Fact]
    public void Image_to_video_keeps_the_encoded_image_as_latent_frame_0()
    {
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var prompt = Tensor.FromArray(Enumerable.Range(0, 512 * 24).Select(i => MathF.Sin(i)).ToArray(), [512, 24]);
        var image = Gradient(1, 32, 48);
        var result = pipeline.Generate(new GenerationOptions
        {
            Frames = 9, Height = 32, Width = 48, Steps = 3, Guidance = 1, Seed = 5, PromptEmbeds = prompt,
            Image = image, OutputType = OutputType.Latent,
        });
        using var final = result.Latents!;

        // The reference: the VAE's posterior mean of the image alone, normalised with the config's statistics.
        using var pixels = backend.ToDevice(image.ToVaeInput());
        var (mean, logVar) = pipeline.Vae.Encode(pixels);
        using (mean)
        using (logVar)
        {
            var z = mean.ToFloatArray();
            var x = final.ToFloatArray();
            int c = final.Dim(0), t = final.Dim(1), hw = final.Dim(2) * final.Dim(3);
            var expected = new float[c * hw];
            var actual = new float[c * hw];
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < hw; p++)
                {
                    expected[ch * hw + p] = (z[ch * hw + p] - pipeline.Vae.LatentsMean[ch]) / pipeline.Vae.LatentsStd[ch];
                    actual[ch * hw + p] = x[(ch * t) * hw + p];
                }
            Assert.True(RelativeError(actual, expected) < 1e-6, $"frame 0 relative error {RelativeError(actual, expected):E2}");
        }
    }

    [Fact]
    public void Editing_at_full_strength_is_text_to_video_from_the_same_noise()
    {
        // Strength 1 keeps every step and σ₀ ≈ 1, so the clip contributes (1 − σ₀)·x₀ ≈ 1e-6·x₀: the result is t2v's.
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        using var prompt = Tensor.FromArray(Enumerable.Range(0, 512 * 24).Select(i => MathF.Cos(i)).ToArray(), [512, 24]);
        var options = new GenerationOptions
        {
            Frames = 9, Height = 32, Width = 48, Steps = 3, Guidance = 1, Seed = 9, PromptEmbeds = prompt, OutputType = OutputType.Latent,
        };
        var plain = pipeline.Generate(options);
        var edited = pipeline.Generate(options with { Video = Gradient(9, 32, 48), Strength = 1.0 });
        using (plain.Latents)
        using (edited.Latents)
            Assert.True(RelativeError(edited.Latents!.ToFloatArray(), plain.Latents!.ToFloatArray()) < 1e-4);
    }
}
