using Sora.Native.Wan;
using Sora.Runtime;
using Sora.Runtime.Safetensors;
using Sora.Tests.Text;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// Per-token timesteps (Wan2.2 TI2V, image to video) against diffusers' WanTransformer3DModel with a [1, seq_len]
/// timestep, on the ti2v-small fixture's tiny model.
/// </summary>
public sealed class TransformerTokenTests
{
    public static string Ti2vDir => Path.Combine(AppContext.BaseDirectory, "fixtures", "ti2v-small");
    public static string TransformerDir => Path.Combine(Ti2vDir, "model", "transformer");
    private const string CaseFile = "transformer_tokens_case.safetensors";

    [Theory]
    [InlineData("timestep_i2v", "expected_i2v")]
    [InlineData("timestep_any", "expected_any")]
    public void Forward_matches_diffusers_on_the_cpu_backend(string timesteps, string expected)
    {
        using var backend = new PoisoningBackend(NewCpuBackend());
        AssertMatchesFixture(backend, timesteps, expected);
    }

    internal static void AssertMatchesFixture(IBackend backend, string timesteps, string expectedName)
    {
        using var model = WanTransformer.Load(TransformerDir, backend);
        var (latents, latentShape) = Case("hidden_states");
        var (text, textShape) = Case("encoder_hidden_states");
        var (expected, expectedShape) = Case(expectedName);
        var (tokenTimesteps, _) = Case(timesteps);

        using var x = ToBackend(backend, latents, latentShape);
        using var e = ToBackend(backend, text, textShape);
        using var v = model.Forward(x, tokenTimesteps, e);
        Assert.Equal(expectedShape, v.Shape);
        double error = RelativeError(Read(backend, v), expected);
        Console.WriteLine($"{CaseFile} {expectedName} on {backend.Device.Kind}: relative error {error:E2}");
        Assert.True(error < 1e-4, $"{expectedName}: relative error {error:E2} on {backend.Device.Kind}");
    }

    [Fact]
    public void The_two_cases_really_differ_from_a_scalar_timestep()
    {
        // Guards the fixture test: if the per-token path ignored the token values, one scalar run would match.
        using var backend = NewCpuBackend();
        using var model = WanTransformer.Load(TransformerDir, backend);
        var (latents, latentShape) = Case("hidden_states");
        var (text, textShape) = Case("encoder_hidden_states");
        var (tokenTimesteps, _) = Case("timestep_i2v");
        using var x = ToBackend(backend, latents, latentShape);
        using var e = ToBackend(backend, text, textShape);
        using var scalar = model.Forward(x, tokenTimesteps.Max(), e);
        Assert.True(RelativeError(Read(backend, scalar), Case("expected_i2v").Data) > 1e-2);
    }

    [Fact]
    public void Equal_timesteps_per_token_give_exactly_the_scalar_output()
    {
        using var backend = new PoisoningBackend(NewCpuBackend());
        using var model = WanTransformer.Load(TransformerDir, backend);
        var (latents, latentShape) = Case("hidden_states");
        var (text, textShape) = Case("encoder_hidden_states");
        using var x = ToBackend(backend, latents, latentShape);
        using var e = ToBackend(backend, text, textShape);
        using var perToken = model.Forward(x, Enumerable.Repeat(713f, 18).ToArray(), e);
        using var scalar = model.Forward(x, 713f, e);
        Assert.Equal(Read(backend, scalar), Read(backend, perToken));
    }

    [Fact]
    public void Packed_prompts_with_token_timesteps_match_separate_passes()
    {
        using var backend = new PoisoningBackend(NewCpuBackend());
        using var model = WanTransformer.Load(TransformerDir, backend);
        var (latents, latentShape) = Case("hidden_states");
        var (text, textShape) = Case("encoder_hidden_states");
        var (tokenTimesteps, _) = Case("timestep_i2v");
        using var x = ToBackend(backend, latents, latentShape);
        using var c = ToBackend(backend, text, textShape);
        // A different, shorter second prompt: each packed sample must use its own text and the shared token pattern.
        using var u = ToBackend(backend, text.AsSpan(3 * textShape[1], 9 * textShape[1]).ToArray(), [9, textShape[1]]);

        using var context = model.EncodeText(c, u);
        using var both = model.Forward(x, tokenTimesteps, context);
        using var alone0 = model.Forward(x, tokenTimesteps, c);
        using var alone1 = model.Forward(x, tokenTimesteps, u);
        var all = Read(backend, both);
        int n = all.Length / 2;
        var separate0 = Read(backend, alone0);
        var separate1 = Read(backend, alone1);
        Assert.True(RelativeError(all[..n], separate0) < 1e-6);
        Assert.True(RelativeError(all[n..], separate1) < 1e-6);
        Assert.True(RelativeError(separate0, separate1) > 1e-2);
    }

    [Fact]
    public void Packed_prompts_crossing_the_ffn_row_chunks_keep_each_rows_timestep()
    {
        // 4·32·36 = 4608 tokens per prompt: the packed pair (9216 rows) crosses the FFN's 8192-row chunks, so the
        // second chunk's rows must find their sets at an offset; the separate passes fit in one chunk.
        using var backend = new PoisoningBackend(NewCpuBackend());
        using var model = WanTransformer.Load(TransformerDir, backend);
        int[] latentShape = [4, 4, 64, 72];
        int tokensPerFrame = 32 * 36;
        var rng = new Random(3);
        var latents = Enumerable.Range(0, 4 * 4 * 64 * 72).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        // Known first frame at 0, then a different timestep per remaining frame.
        var timesteps = Enumerable.Range(0, 4 * tokensPerFrame).Select(i => i < tokensPerFrame ? 0f : 500f + 100f * (i / tokensPerFrame)).ToArray();
        var (text, textShape) = Case("encoder_hidden_states");
        using var x = ToBackend(backend, latents, latentShape);
        using var c = ToBackend(backend, text, textShape);
        using var u = ToBackend(backend, text.AsSpan(3 * textShape[1], 9 * textShape[1]).ToArray(), [9, textShape[1]]);

        using var context = model.EncodeText(c, u);
        using var both = model.Forward(x, timesteps, context);
        using var alone0 = model.Forward(x, timesteps, c);
        using var alone1 = model.Forward(x, timesteps, u);
        var all = Read(backend, both);
        int n = all.Length / 2;
        Assert.True(RelativeError(all[..n], Read(backend, alone0)) < 1e-6);
        Assert.True(RelativeError(all[n..], Read(backend, alone1)) < 1e-6);
    }

    [Fact]
    public void Token_timesteps_of_the_wrong_count_or_not_finite_are_rejected()
    {
        using var backend = NewCpuBackend();
        using var model = WanTransformer.Load(TransformerDir, backend);
        using var x = Tensor.ZerosHost(DType.F32, 4, 3, 4, 6);
        using var e = Tensor.ZerosHost(DType.F32, 512, model.Config.TextDim);
        var count = Assert.Throws<ArgumentException>(() => model.Forward(x, new float[17], e));
        Assert.Equal("tokenTimesteps", count.ParamName);
        Assert.Contains("18", count.Message);
        var values = new float[18];
        values[5] = float.NaN;
        var nan = Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward(x, values, e));
        Assert.Equal("tokenTimesteps", nan.ParamName);
        Assert.Contains("tokenTimesteps[5]", nan.Message);
        Assert.Throws<ArgumentNullException>(() => model.Forward(x, (float[])null!, e));
    }

    /// <summary>A tensor of the case file without its batch axis of 1, as floats.</summary>
    internal static (float[] Data, int[] Shape) Case(string name)
    {
        using var f = SafetensorsFile.Open(Path.Combine(Ti2vDir, CaseFile));
        var t = f.Get(name);
        Assert.Equal(1, t.Dim(0));
        return (t.ToFloatArray(), t.Shape[1..]);
    }
}

/// <summary>The per-token fixture cases on ILGPU's CPU accelerator, sharing the suite's one instance.</summary>
[Collection(Sora.Tests.Kernels.Ilgpu.IlgpuCpuCollection.Name)]
public sealed class TransformerTokenIlgpuTests(Sora.Tests.Kernels.Ilgpu.IlgpuCpuFixture fixture)
{
    [Theory]
    [InlineData("timestep_i2v", "expected_i2v")]
    [InlineData("timestep_any", "expected_any")]
    public void Forward_matches_diffusers_on_the_ilgpu_cpu_accelerator(string timesteps, string expected)
        => TransformerTokenTests.AssertMatchesFixture(new PoisoningBackend(fixture.Backend), timesteps, expected);

    [Fact]
    public void Packed_prompts_with_token_timesteps_match_the_cpu_backend()
    {
        var (latents, latentShape) = TransformerTokenTests.Case("hidden_states");
        var (text, textShape) = TransformerTokenTests.Case("encoder_hidden_states");
        var (timesteps, _) = TransformerTokenTests.Case("timestep_any");
        float[] Run(IBackend backend)
        {
            using var model = WanTransformer.Load(TransformerTokenTests.TransformerDir, backend);
            using var x = ToBackend(backend, latents, latentShape);
            using var c = ToBackend(backend, text, textShape);
            using var u = ToBackend(backend, text.AsSpan(3 * textShape[1], 9 * textShape[1]).ToArray(), [9, textShape[1]]);
            using var context = model.EncodeText(c, u);
            using var v = model.Forward(x, timesteps, context);
            return Read(backend, v);
        }
        using var cpu = NewCpuBackend();
        double error = RelativeError(Run(new PoisoningBackend(fixture.Backend)), Run(cpu));
        Assert.True(error < 1e-5, $"relative error {error:E2}");
    }
}
