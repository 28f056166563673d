using Sora.Kernels.Cpu;
using Sora.Native.Pipeline;
using Sora.Native.Video;
using Sora.Native.Wan;
using Sora.Runtime;
using Sora.Tests.Text;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// The geometry of the 64×64×17 default model (tests/fixtures/wan-s4p4-small, widths shrunk): a Wan2.1 VAE of three
/// stages whose two downsamplers both halve time (4× in space, 4× in time, not Wan's 8×), a transformer with
/// patch_size [1, 4, 4] and per-token timesteps (expand_timesteps), against the PyTorch reference
/// (tools/train-default-model/wan_torch.py, which the fixture's script first checks against diffusers' outputs).
/// </summary>
public sealed class SmallFactorFixtureTests
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "wan-s4p4-small");
    public static string ModelDir => Path.Combine(Dir, "model");

    internal static (float[] Data, int[] Shape) Case(string name) => FixtureTensorIn(Dir, "cases.safetensors", name);

    [Fact]
    public void The_configs_give_4x_space_4x_time_and_16_pixel_tokens()
    {
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        Assert.Equal(4, pipeline.Vae.Config.SpatialFactor);
        Assert.Equal(4, pipeline.Vae.Config.TemporalFactor);
        Assert.Equal([1, 4, 4], pipeline.Transformer.Config.PatchSize);
        Assert.Equal(16, pipeline.SizeMultiple);
    }

    /// <summary>
    /// The CPU backend's default 3×3 convolutions are Winograd F(4×4, 3×3) (about 1–2·10⁻⁶ each, see WinogradConv);
    /// this VAE's 2- and 4-channel stages amplify that to about 2·10⁻⁵ in the decoded video, so the default path gets
    /// the fixtures' usual 1e-4 and the direct sum (implicit GEMM) the tighter 1e-5.
    /// </summary>
    [Theory]
    [InlineData(false, 1e-4)]
    [InlineData(true, 1e-5)]
    public void Vae_decode_matches_the_reference(bool directSum, double tolerance)
    {
        using var backend = PoisonedCpu(directSum);
        AssertDecodeMatches(backend, tolerance);
    }

    [Theory]
    [InlineData(false, 1e-4)]
    [InlineData(true, 1e-5)]
    public void Vae_encode_matches_the_reference(bool directSum, double tolerance)
    {
        using var backend = PoisonedCpu(directSum);
        AssertEncodeMatches(backend, tolerance);
    }

    private static PoisoningBackend PoisonedCpu(bool directSum)
    {
        return new PoisoningBackend(new CpuBackend { ConvAlgorithm = directSum ? ConvAlgorithm.ImplicitGemm : ConvAlgorithm.Auto });
    }

    [Theory]
    [InlineData("timestep_i2v", "expected_i2v")]
    [InlineData("timestep_any", "expected_any")]
    public void Transformer_with_token_timesteps_matches_the_reference(string timesteps, string expected)
    {
        using var backend = new PoisoningBackend(NewCpuBackend());
        AssertTransformerMatches(backend, timesteps, expected);
    }

    [Fact]
    public void Image_to_video_matches_the_reference()
    {
        // case.json: 9 frames of 32×32, 3 UniPC steps (flow shift 3), guidance 5; the image is latent frame 0.
        using var backend = new PoisoningBackend(NewCpuBackend());
        using var pipeline = WanPipeline.Load(ModelDir, backend);
        var (noise, noiseShape) = Case("latents");
        var (image, imageShape) = Case("image");
        using var latents = Tensor.FromArray(noise, noiseShape);
        using var prompt = Padded("prompt_embeds");
        using var negative = Padded("negative_prompt_embeds");
        var frames = new VideoFrames(1, imageShape[1], imageShape[2], Interleaved(image, imageShape[1] * imageShape[2]));
        var result = pipeline.Generate(new GenerationOptions
        {
            Frames = 9, Height = 32, Width = 32, Steps = 3, Guidance = 5.0,
            Latents = latents, PromptEmbeds = prompt, NegativePromptEmbeds = negative, Image = frames, OutputType = OutputType.Latent,
        });
        using var final = result.Latents!;
        var (expected, expectedShape) = Case("i2v_expected_latents");
        Assert.Equal(expectedShape, final.Shape);
        double error = RelativeError(final.ToFloatArray(), expected);
        Console.WriteLine($"wan-s4p4-small i2v: latents relative error {error:E2}");
        Assert.True(error < 1e-4, $"latents relative error {error:E2}");
    }

    internal static void AssertDecodeMatches(IBackend backend, double tolerance)
    {
        using var vae = WanVae.Load(Path.Combine(ModelDir, "vae"), backend);
        var (latents, latentShape) = Case("vae_latents");
        var (expected, expectedShape) = Case("vae_expected");
        using var z = ToBackend(backend, latents, latentShape);
        using var video = vae.Decode(z);
        Assert.Equal(expectedShape, video.Shape);
        double error = RelativeError(Read(backend, video), expected);
        Console.WriteLine($"wan-s4p4-small decode on {backend.Device.Kind}: relative error {error:E2}");
        Assert.True(error < tolerance, $"decode relative error {error:E2} on {backend.Device.Kind}");
    }

    internal static void AssertEncodeMatches(IBackend backend, double tolerance)
    {
        using var vae = WanVae.Load(Path.Combine(ModelDir, "vae"), backend);
        var (video, videoShape) = Case("vae_video");
        var (expectedMean, meanShape) = Case("vae_expected_mean");
        var (expectedLogVar, _) = Case("vae_expected_logvar");
        using var x = ToBackend(backend, video, videoShape);
        var (mean, logVar) = vae.Encode(x);
        using (mean)
        using (logVar)
        {
            Assert.Equal(meanShape, mean.Shape);
            double meanError = RelativeError(Read(backend, mean), expectedMean);
            double logVarError = RelativeError(Read(backend, logVar), expectedLogVar);
            Console.WriteLine($"wan-s4p4-small encode on {backend.Device.Kind}: mean {meanError:E2}, logvar {logVarError:E2}");
            Assert.True(meanError < tolerance, $"mean relative error {meanError:E2} on {backend.Device.Kind}");
            Assert.True(logVarError < tolerance, $"logvar relative error {logVarError:E2} on {backend.Device.Kind}");
        }
    }

    internal static void AssertTransformerMatches(IBackend backend, string timesteps, string expectedName)
    {
        using var model = WanTransformer.Load(Path.Combine(ModelDir, "transformer"), backend);
        var (latents, latentShape) = Case("hidden_states");
        var (expected, expectedShape) = Case(expectedName);
        var (tokenTimesteps, _) = Case(timesteps);
        using var x = ToBackend(backend, latents, latentShape);
        using var text = Padded("encoder_hidden_states");
        using var e = backend.ToDevice(text);
        using var v = model.Forward(x, tokenTimesteps, e);
        Assert.Equal(expectedShape, v.Shape);
        double error = RelativeError(Read(backend, v), expected);
        Console.WriteLine($"wan-s4p4-small {expectedName} on {backend.Device.Kind}: relative error {error:E2}");
        Assert.True(error < 1e-5, $"{expectedName}: relative error {error:E2} on {backend.Device.Kind}");
    }

    /// <summary>The real rows of an embedding case, padded with zero rows to 512 as the pipeline builds them.</summary>
    private static Tensor Padded(string name)
    {
        var (rows, shape) = Case(name);
        var padded = new float[WanPipeline.TextLength * shape[1]];
        rows.CopyTo(padded, 0);
        return Tensor.FromArray(padded, [WanPipeline.TextLength, shape[1]]);
    }

    /// <summary>Planes [3, H·W] in [−1, 1] as interleaved RGB in [0, 1].</summary>
    private static float[] Interleaved(float[] planes, int pixels)
    {
        var rgb = new float[3 * pixels];
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < pixels; p++)
                rgb[3 * p + c] = (planes[c * pixels + p] + 1f) / 2f;
        return rgb;
    }
}

/// <summary>The same VAE and transformer cases on ILGPU's CPU accelerator (the kernels that run on CUDA and OpenCL).</summary>
[Collection(Sora.Tests.Kernels.Ilgpu.IlgpuCpuCollection.Name)]
public sealed class SmallFactorIlgpuTests(Sora.Tests.Kernels.Ilgpu.IlgpuCpuFixture fixture)
{
    [Fact]
    public void Vae_decode_and_encode_match_the_reference_on_the_ilgpu_cpu_accelerator()
    {
        var backend = new PoisoningBackend(fixture.Backend);
        SmallFactorFixtureTests.AssertDecodeMatches(backend, 1e-5);
        SmallFactorFixtureTests.AssertEncodeMatches(backend, 1e-5);
    }

    [Fact]
    public void Transformer_with_token_timesteps_matches_the_reference_on_the_ilgpu_cpu_accelerator()
        => SmallFactorFixtureTests.AssertTransformerMatches(new PoisoningBackend(fixture.Backend), "timestep_i2v", "expected_i2v");
}
