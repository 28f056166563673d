using Sora.Native.Loading;
using Sora.Native.Wan;
using Sora.Runtime;
using Sora.Tests.Text;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>WanTransformer against diffusers' WanTransformer3DModel on the fixture's tiny random model.</summary>
public sealed class TransformerTests
{
    public static string TransformerDir => Path.Combine(FixtureDir, "model", "transformer");

    [Fact]
    public void Forward_matches_diffusers_on_the_cpu_backend()
    {
        using var backend = new PoisoningBackend(NewCpuBackend());
        AssertMatchesFixture(backend);
    }

    internal static void AssertMatchesFixture(IBackend backend)
    {
        using var model = WanTransformer.Load(TransformerDir, backend);
        var (latents, latentShape) = FixtureTensor("transformer_case.safetensors", "hidden_states");
        var (text, textShape) = FixtureTensor("transformer_case.safetensors", "encoder_hidden_states");
        var (expected, expectedShape) = FixtureTensor("transformer_case.safetensors", "expected");
        float timestep = ReadAll(Path.Combine(FixtureDir, "transformer_case.safetensors"))["timestep"].Data[0];

        using var x = ToBackend(backend, latents, latentShape);
        using var e = ToBackend(backend, text, textShape);
        using var v = model.Forward(x, timestep, e);
        Assert.Equal(expectedShape, v.Shape);
        double error = RelativeError(Read(backend, v), expected);
        Assert.True(error < 1e-4, $"relative error {error:E2} on {backend.Device.Kind}");
        Console.WriteLine($"transformer_case on {backend.Device.Kind}: relative error {error:E2}");
    }

    [Fact]
    public void Batched_prompts_give_the_same_velocity_as_separate_passes()
    {
        using var backend = new PoisoningBackend(NewCpuBackend());
        using var model = WanTransformer.Load(TransformerDir, backend);
        // 4·32·36 = 4608 tokens per prompt: the packed pair (9216 rows) also crosses the FFN's 8192-row chunks.
        int[] latentShape = [4, 4, 64, 72];
        var rng = new Random(3);
        var latents = Enumerable.Range(0, 4 * 4 * 64 * 72).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var (cond, condShape) = FixtureTensor("pipeline_case.safetensors", "prompt_embeds");
        var (uncond, uncondShape) = FixtureTensor("pipeline_case.safetensors", "negative_prompt_embeds");
        using var x = ToBackend(backend, latents, latentShape);
        using var c = ToBackend(backend, cond, condShape);
        // A shorter second prompt: packed sequences of different lengths must stay separate.
        using var u = ToBackend(backend, uncond.AsSpan(0, 40 * uncondShape[1]).ToArray(), [40, uncondShape[1]]);

        using var context = model.EncodeText(c, u);
        using var both = model.Forward(x, 750f, context);
        using var alone0 = model.Forward(x, 750f, c);
        using var alone1 = model.Forward(x, 750f, u);
        var all = Read(backend, both);
        int n = all.Length / 2;
        var separate0 = Read(backend, alone0);
        var separate1 = Read(backend, alone1);
        Assert.True(RelativeError(all[..n], separate0) < 1e-6);
        Assert.True(RelativeError(all[n..], separate1) < 1e-6);
        // The two prompts really differ, so the comparison above can tell them apart.
        Assert.True(RelativeError(separate0, separate1) > 1e-2);
    }

    [Theory]
    [InlineData(new[] { 3, 3, 4, 6 }, "C=4")]      // wrong channel count
    [InlineData(new[] { 4, 3, 5, 6 }, "axis 2")]   // height not a multiple of the patch
    [InlineData(new[] { 4, 3, 4 }, "C=4")]         // wrong rank
    public void Bad_latents_are_rejected_naming_the_argument(int[] shape, string mention)
    {
        using var backend = NewCpuBackend();
        using var model = WanTransformer.Load(TransformerDir, backend);
        using var x = Tensor.ZerosHost(DType.F32, shape);
        using var e = Tensor.ZerosHost(DType.F32, 512, model.Config.TextDim);
        var ex = Assert.Throws<ArgumentException>(() => model.Forward(x, 500f, e));
        Assert.Equal("latents", ex.ParamName);
        Assert.Contains(mention, ex.Message);
    }

    [Fact]
    public void Text_of_the_wrong_width_is_rejected()
    {
        using var backend = NewCpuBackend();
        using var model = WanTransformer.Load(TransformerDir, backend);
        using var x = Tensor.ZerosHost(DType.F32, 4, 3, 4, 6);
        using var e = Tensor.ZerosHost(DType.F32, 512, model.Config.TextDim + 1);
        var ex = Assert.Throws<ArgumentException>(() => model.Forward(x, 500f, e));
        Assert.Equal("textEmbeds", ex.ParamName);
    }
}

/// <summary>The fixture case on ILGPU's CPU accelerator (the kernels that run on CUDA and OpenCL), sharing the suite's one instance.</summary>
[Collection(Sora.Tests.Kernels.Ilgpu.IlgpuCpuCollection.Name)]
public sealed class TransformerIlgpuTests(Sora.Tests.Kernels.Ilgpu.IlgpuCpuFixture fixture)
{
    [Fact]
    public void Forward_matches_diffusers_on_the_ilgpu_cpu_accelerator() => TransformerTests.AssertMatchesFixture(fixture.Backend);

    [Fact]
    public void Packed_prompts_match_the_cpu_backend()
    {
        var (latents, latentShape) = FixtureTensor("pipeline_case.safetensors", "latents");
        var (cond, condShape) = FixtureTensor("pipeline_case.safetensors", "prompt_embeds");
        var (uncond, uncondShape) = FixtureTensor("pipeline_case.safetensors", "negative_prompt_embeds");
        float[] Run(IBackend backend)
        {
            using var model = WanTransformer.Load(TransformerTests.TransformerDir, backend);
            using var x = ToBackend(backend, latents, latentShape);
            using var c = ToBackend(backend, cond, condShape);
            using var u = ToBackend(backend, uncond.AsSpan(0, 40 * uncondShape[1]).ToArray(), [40, uncondShape[1]]);
            using var context = model.EncodeText(c, u);
            using var v = model.Forward(x, 999f, context);
            return Read(backend, v);
        }
        using var cpu = NewCpuBackend();
        double error = RelativeError(Run(fixture.Backend), Run(cpu));
        Assert.True(error < 1e-5, $"relative error {error:E2}");
    }
}
