using Sora.Native.Loading;
using Sora.Native.Wan;
using Sora.Runtime;
using Sora.Runtime.Safetensors;
using Sora.Tests.Text;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Loading;

/// <summary>
/// The files people download (tests/fixtures/single-file-small): original-layout transformer and VAE files, read
/// as they are, against the Wan2.1 team's own modules in float32 (tolerance 1e-4 per component).
/// </summary>
public sealed class SingleFileFixtureTests
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "single-file-small");
    public static string File(string name) => Path.Combine(Dir, name);
    public static string Config => File("transformer_config.json");

    private static float[] Case(string name)
    {
        using var f = SafetensorsFile.Open(File("cases.safetensors"));
        return f.Get(name).ToFloatArray();
    }

    private static int[] CaseShape(string name)
    {
        using var f = SafetensorsFile.Open(File("cases.safetensors"));
        return f.GetEntry(name).Shape;
    }

    /// <summary>The model's velocity for the case inputs (the context padded to 512 rows with zeros, as the reference does).</summary>
    private static double TransformerError(string file, string expected, IReadOnlyList<LoraSpec>? loras = null)
    {
        using var backend = new PoisoningBackend(NewCpuBackend());
        using var model = WanTransformer.Load(File(file), backend, Config, loras);
        var context = Case("input_context");
        var padded = new float[512 * model.Config.TextDim];
        context.CopyTo(padded, 0);
        using var x = ToBackend(backend, Case("input_latents"), CaseShape("input_latents"));
        using var e = ToBackend(backend, padded, [512, model.Config.TextDim]);
        using var v = model.Forward(x, Case("input_timestep")[0], e);
        double error = RelativeError(Read(backend, v), Case(expected));
        Console.WriteLine($"{file}{(loras is null ? "" : " + " + string.Join(", ", loras.Select(l => Path.GetFileName(l.Path))))}: relative error {error:E2}");
        return error;
    }

    [Fact]
    public void The_fp16_file_matches_the_reference() => Assert.True(TransformerError("wan2.1_t2v_tiny_fp16.safetensors", "expected_fp16") < 1e-4);

    [Fact]
    public void The_bf16_file_with_the_model_diffusion_model_prefix_matches_the_reference()
        => Assert.True(TransformerError("wan2.1_t2v_tiny_bf16.safetensors", "expected_bf16") < 1e-4);

    [Fact]
    public void The_plain_fp8_file_matches_the_reference()
        => Assert.True(TransformerError("wan2.1_t2v_tiny_fp8_e4m3fn.safetensors", "expected_fp8_e4m3fn") < 1e-4);

    [Fact]
    public void The_scaled_fp8_file_matches_the_reference()
        => Assert.True(TransformerError("wan2.1_t2v_tiny_fp8_scaled.safetensors", "expected_fp8_scaled") < 1e-4);

    [Fact]
    public void A_comfy_lora_on_the_bf16_file_matches_the_reference()
        => Assert.True(TransformerError("wan2.1_t2v_tiny_bf16.safetensors", "expected_bf16_lora_comfy", [new LoraSpec(File("lora_tiny_comfy.safetensors"), 0.8f)]) < 1e-4);

    [Fact]
    public void A_diffusers_lora_on_the_bf16_file_matches_the_reference()
        => Assert.True(TransformerError("wan2.1_t2v_tiny_bf16.safetensors", "expected_bf16_lora_diffusers", [new LoraSpec(File("lora_tiny_diffusers.safetensors"), 0.8f)]) < 1e-4);

    [Fact]
    public void The_lora_really_changes_the_output()
    {
        // Guards the LoRA cases: were the LoRA ignored, the plain bf16 expectation would not be met within 1e-4 either.
        Assert.True(RelativeError(Case("expected_bf16_lora_comfy"), Case("expected_bf16")) > 1e-2);
        Assert.True(RelativeError(Case("expected_bf16_lora_diffusers"), Case("expected_bf16")) > 1e-2);
    }

    [Fact]
    public void The_scaled_fp8_file_pairs_every_scale_with_its_weight_and_hides_the_marker()
    {
        var (source, _) = WanComponents.Transformer(File("wan2.1_t2v_tiny_fp8_scaled.safetensors"), Config);
        using (source)
        {
            Assert.DoesNotContain(ScaledFp8Source.Marker, source.Names);
            // Scales stay visible under the weight's module name, so a binding that reads them by name finds them.
            Assert.Equal(20, source.Names.Count(n => n.EndsWith(".scale_weight", StringComparison.Ordinal)));
            Assert.True(source.Contains("blocks.1.attn2.to_out.0.scale_weight"));
            using var raw = SafetensorsFile.Open(File("wan2.1_t2v_tiny_fp8_scaled.safetensors"));
            int scaled = 0;
            foreach (var e in raw.Entries.Where(e => e.Name.EndsWith(".scale_weight", StringComparison.Ordinal)))
            {
                string original = e.Name[..^".scale_weight".Length] + ".weight";
                string model = WanTransformerNames.Table.ToModel(original)!;
                Assert.Equal(raw.Get(e.Name).ToFloatArray()[0], source.WeightScale(model));
                Assert.Equal(DType.F8E4M3, source.Describe(model).DType);
                scaled++;
            }
            Assert.Equal(20, scaled); // 10 linears in each of 2 blocks
            Assert.Null(source.WeightScale("proj_out.weight"));
        }
    }

    [Fact]
    public void The_architecture_is_read_from_the_shapes_and_the_config_gives_the_heads()
    {
        var config = WanComponents.TransformerConfig(File("wan2.1_t2v_tiny_fp16.safetensors"), Config);
        Assert.Equal((2, 16, 4, 4, 24, 32, 64, 2), (config.NumAttentionHeads, config.AttentionHeadDim, config.InChannels, config.OutChannels,
            config.TextDim, config.FreqDim, config.FfnDim, config.NumLayers));
        Assert.Equal([1, 2, 2], config.PatchSize);
        Assert.True(config.CrossAttnNorm);
    }

    [Fact]
    public void Without_a_config_a_dim_that_is_not_a_multiple_of_128_asks_for_one()
    {
        var ex = Assert.Throws<ModelLoadException>(() => WanComponents.TransformerConfig(File("wan2.1_t2v_tiny_fp16.safetensors")));
        Assert.Contains("wan2.1_t2v_tiny_fp16.safetensors", ex.Message);
        Assert.Contains("num_heads", ex.Message);
        Assert.Contains("--transformer-config", ex.Message);
    }

    [Fact]
    public void The_vae_file_decodes_like_the_reference()
    {
        using var backend = new PoisoningBackend(NewCpuBackend());
        using var vae = WanVae.Load(File("wan_2.1_vae_tiny_bf16.safetensors"), backend);
        var shape = CaseShape("vae_input_latents");
        using var z = ToBackend(backend, Case("vae_input_latents"), shape[1..]);
        using var video = vae.Decode(z);
        double error = RelativeError(Read(backend, video), Case("vae_expected_bf16"));
        Console.WriteLine($"VAE decode (bf16 file): relative error {error:E2}");
        Assert.True(error < 1e-4, $"relative error {error:E2}");
    }

    [Fact]
    public void The_vae_file_encodes_like_the_reference()
    {
        using var backend = new PoisoningBackend(NewCpuBackend());
        using var vae = WanVae.Load(File("wan_2.1_vae_tiny_bf16.safetensors"), backend);
        var shape = CaseShape("vae_input_video");
        using var x = ToBackend(backend, Case("vae_input_video"), shape[1..]);
        var (mean, logVar) = vae.Encode(x);
        using (mean)
        using (logVar)
        {
            double error = RelativeError(Read(backend, mean), Case("vae_expected_mean_bf16"));
            Console.WriteLine($"VAE encode mean (bf16 file): relative error {error:E2}");
            Assert.True(error < 1e-4, $"relative error {error:E2}");
        }
    }

    [Fact]
    public void The_vae_architecture_is_read_from_the_shapes()
    {
        var config = WanComponents.VaeConfig(File("wan_2.1_vae_tiny_fp32.safetensors"));
        Assert.Equal((8, 4, 2, 3, 3), (config.BaseDim, config.ZDim, config.NumResBlocks, config.InChannels, config.OutChannels));
        Assert.Equal([1, 2, 4, 4], config.DimMult);
        Assert.Equal([false, true, true], config.TemperalDownsample);
        Assert.Equal(8, config.SpatialFactor);
        Assert.Equal(4, config.TemporalFactor);
    }
}
