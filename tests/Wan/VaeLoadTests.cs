using Xunit;
using System.Text.Json.Nodes;
using Sora.Native.Loading;
using Sora.Native.Wan;
using Sora.Native.Wan.Vae;
using Sora.Runtime;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>Config parsing and weight binding of <see cref="WanVae"/>: what loads, and the errors for what does not.</summary>
public sealed class VaeLoadTests
{
    [Fact]
    public void Reads_the_fixture_config()
    {
        var config = WanVaeConfig.Load(Path.Combine(FixtureVaeDir, "config.json"));
        Assert.Equal(8, config.BaseDim);
        Assert.Equal(8, config.DecoderBaseDim); // null in the file → base_dim
        Assert.Equal(4, config.ZDim);
        Assert.Equal([1, 2, 2, 2], config.DimMult);
        Assert.Equal(1, config.NumResBlocks);
        Assert.Equal([false, true, true], config.TemperalDownsample);
        Assert.Equal(4, config.LatentsMean.Length);
        Assert.Equal(1.5167853832244873f, config.LatentsStd[3]);
    }

    [Fact]
    public void Absent_keys_take_the_wan21_defaults_and_unknown_keys_are_ignored()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "config.json");
        File.WriteAllText(path, """{"_class_name": "AutoencoderKLWan", "some_future_key": {"a": [1, 2]}, "clip_output": true}""");
        var config = WanVaeConfig.Load(path);
        Assert.Equal(96, config.BaseDim);
        Assert.Equal(96, config.DecoderBaseDim);
        Assert.Equal(16, config.ZDim);
        Assert.Equal([1, 2, 4, 4], config.DimMult);
        Assert.Equal(2, config.NumResBlocks);
        Assert.Equal(-0.7571f, config.LatentsMean[0]);
        Assert.Equal(1.9160f, config.LatentsStd[15]);
    }

    [Fact]
    public void Attention_at_other_scales_is_refused_clearly()
    {
        using var dir = WithConfigChange(config => config["attn_scales"] = JsonNode.Parse("[0.5]"));
        using var backend = NewCpuBackend();
        var e = Assert.Throws<NotSupportedException>(() => WanVae.Load(dir.Path, backend));
        Assert.Contains("attn_scales", e.Message);
        Assert.Contains("config.json", e.Message);
    }

    [Theory]
    [InlineData("z_dim", "\"four\"", "z_dim")]
    [InlineData("dim_mult", "[1, 2, \"x\"]", "dim_mult")]
    [InlineData("latents_std", "[1.0, 2.0]", "latents_std")]
    [InlineData("temperal_downsample", "[false, true]", "temperal_downsample")]
    [InlineData("_class_name", "\"AutoencoderKL\"", "_class_name")]
    public void Bad_config_values_name_the_key(string key, string value, string named)
    {
        using var dir = WithConfigChange(config => config[key] = JsonNode.Parse(value));
        using var backend = NewCpuBackend();
        var e = Assert.Throws<ModelLoadException>(() => WanVae.Load(dir.Path, backend));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void A_missing_tensor_is_named()
    {
        const string name = "decoder.up_blocks.1.resnets.0.conv_shortcut.weight";
        using var dir = WithWeightsChange(tensors => tensors.Remove(name));
        using var backend = NewCpuBackend();
        var e = Assert.Throws<ModelLoadException>(() => WanVae.Load(dir.Path, backend));
        Assert.Contains(name, e.Message);
    }

    [Fact]
    public void A_mis_shaped_tensor_is_named_with_both_shapes()
    {
        const string name = "encoder.mid_block.attentions.0.to_qkv.weight";
        using var dir = WithWeightsChange(tensors => tensors[name] = ([48, 16, 1], tensors[name].Data));
        using var backend = NewCpuBackend();
        var e = Assert.Throws<ModelLoadException>(() => WanVae.Load(dir.Path, backend));
        Assert.Contains(name, e.Message);
        Assert.Contains("[48, 16, 1]", e.Message);
        Assert.Contains("[48, 16, 1, 1]", e.Message);
    }

    [Fact]
    public void An_unused_tensor_is_named()
    {
        const string name = "decoder.up_blocks.3.upsamplers.0.resample.1.weight";
        using var dir = WithWeightsChange(tensors => tensors[name] = ([2, 2], new float[4]));
        using var backend = NewCpuBackend();
        var e = Assert.Throws<ModelLoadException>(() => WanVae.Load(dir.Path, backend));
        Assert.Contains(name, e.Message);
    }

    /// <summary>The test-side tensor list (from the specification) matches the fixture: the random-weight models use it.</summary>
    [Fact]
    public void The_specified_tensor_list_matches_the_fixture_checkpoint()
    {
        var expected = VaeTensorShapes(8, [1, 2, 2, 2], 4, 1, [false, true, true])
            .ToDictionary(t => t.Name, t => t.Shape);
        var actual = ReadAll(Path.Combine(FixtureVaeDir, "diffusion_pytorch_model.safetensors"));
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, shape) in expected) Assert.True(shape.SequenceEqual(actual[name].Shape), name);
    }

    /// <summary>
    /// A Wan2.1-sized layout (base 96, [1,2,4,4], 2 res blocks, z 16: the published 194 tensors) binds every
    /// tensor by name and shape (zero weights in a sparse file: binding reads only the header).
    /// </summary>
    [Fact]
    public void Binds_every_tensor_of_the_wan21_layout()
    {
        var shapes = VaeTensorShapes(96, [1, 2, 4, 4], 16, 2, [false, true, true]);
        Assert.Equal(194, shapes.Count); // wan-architecture.md 3.7
        Assert.Equal(126_892_531L, shapes.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)));
        using var dir = new TempDir();
        WriteSafetensors(Path.Combine(dir.Path, "diffusion_pytorch_model.safetensors"), shapes, data: null);
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), """{"_class_name": "AutoencoderKLWan", "attn_scales": [], "base_dim": 96, "decoder_base_dim": null, "is_residual": false, "patch_size": null}""");
        using var backend = NewCpuBackend();
        using var vae = WanVae.Load(dir.Path, backend);
        Assert.Equal(16, vae.ZDim);
    }

    [Fact]
    public void Reads_the_wan22_fixture_config()
    {
        var config = WanVaeConfig.Load(Path.Combine(Fixture22VaeDir, "config.json"));
        Assert.True(config.IsResidual);
        Assert.Equal(2, config.PatchSize);
        Assert.Equal(8, config.BaseDim);
        Assert.Equal(12, config.DecoderBaseDim);
        Assert.Equal(12, config.InChannels);
        Assert.Equal(12, config.OutChannels);
        Assert.Equal(3, config.PixelInChannels);
        Assert.Equal(3, config.PixelOutChannels);
        Assert.Equal(16, config.SpatialFactor);
        Assert.Equal(4, config.TemporalFactor);
    }

    [Fact]
    public void A_wan21_config_without_the_wan22_keys_keeps_patch_1_and_plain_stages()
    {
        var config = WanVaeConfig.Load(Path.Combine(FixtureVaeDir, "config.json"));
        Assert.False(config.IsResidual);
        Assert.Equal(1, config.PatchSize);
        Assert.Equal(3, config.PixelInChannels);
        Assert.Equal(8, config.SpatialFactor);
    }

    [Theory]
    [InlineData("patch_size", "3", "patch_size")] // 12 channels are not 3² per pixel channel
    [InlineData("patch_size", "0", "patch_size")]
    [InlineData("patch_size", "\"2\"", "patch_size")]
    [InlineData("in_channels", "10", "in_channels")]
    [InlineData("out_channels", "6", "out_channels")] // not a multiple of patch_size² = 4
    [InlineData("is_residual", "\"yes\"", "is_residual")]
    [InlineData("scale_factor_spatial", "8", "scale_factor_spatial")]
    [InlineData("scale_factor_temporal", "8", "scale_factor_temporal")]
    [InlineData("dim_mult", "[1, 3, 3, 3]", "dim_mult")] // encoder stage 1: 8·8 values do not average evenly into 24 channels
    public void Bad_wan22_config_values_name_the_key(string key, string value, string named)
    {
        using var dir = WithConfigChange(config => config[key] = JsonNode.Parse(value), Fixture22VaeDir);
        using var backend = NewCpuBackend();
        var e = Assert.Throws<ModelLoadException>(() => WanVae.Load(dir.Path, backend));
        Assert.Contains(named, e.Message);
        Assert.Contains("config.json", e.Message);
    }

    /// <summary>Wan2.1 weights under a config that says Wan2.2: the first tensor the residual layout needs is named.</summary>
    [Fact]
    public void Wan21_weights_under_a_wan22_config_name_the_missing_tensor()
    {
        using var dir = WithConfigChange(config => config["is_residual"] = true);
        using var backend = NewCpuBackend();
        var e = Assert.Throws<ModelLoadException>(() => WanVae.Load(dir.Path, backend));
        Assert.Contains("missing tensor 'encoder.down_blocks.0.resnets.0.", e.Message);
    }

    /// <summary>The test-side Wan2.2 tensor list (from the specification) matches the ti2v-small fixture checkpoint.</summary>
    [Fact]
    public void The_specified_wan22_tensor_list_matches_the_fixture_checkpoint()
    {
        var expected = Vae22TensorShapes(8, 12, [1, 2, 2, 2], 4, 1, [false, true, true]).ToDictionary(t => t.Name, t => t.Shape);
        var actual = ReadAll(Path.Combine(Fixture22VaeDir, "diffusion_pytorch_model.safetensors"));
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, shape) in expected) Assert.True(shape.SequenceEqual(actual[name].Shape), name);
    }

    /// <summary>
    /// The Wan2.2-TI2V-5B VAE layout (base 160, decoder base 256, z 48, [1,2,4,4], 2 res blocks) binds every tensor
    /// by name and shape: 196 tensors, 704,688,668 parameters (the published VAE's count).
    /// </summary>
    [Fact]
    public void Binds_every_tensor_of_the_wan22_layout()
    {
        var shapes = Vae22TensorShapes(160, 256, [1, 2, 4, 4], 48, 2, [false, true, true]);
        Assert.Equal(196, shapes.Count);
        Assert.Equal(704_688_668L, shapes.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)));
        using var dir = new TempDir();
        WriteSafetensors(Path.Combine(dir.Path, "diffusion_pytorch_model.safetensors"), shapes, data: null);
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), """
            {"_class_name": "AutoencoderKLWan", "base_dim": 160, "decoder_base_dim": 256, "z_dim": 48, "is_residual": true, "patch_size": 2,
             "in_channels": 12, "out_channels": 12, "scale_factor_spatial": 16, "scale_factor_temporal": 4, "clip_output": false,
             "latents_mean": [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],
             "latents_std": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}
            """);
        using var backend = NewCpuBackend();
        using var vae = WanVae.Load(dir.Path, backend);
        Assert.Equal(48, vae.ZDim);
        Assert.Equal(16, vae.Config.SpatialFactor);
    }

    private static TempDir WithConfigChange(Action<JsonObject> change, string? vaeDir = null)
    {
        vaeDir ??= FixtureVaeDir;
        var dir = new TempDir();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(vaeDir, "config.json")))!.AsObject();
        change(config);
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), config.ToJsonString());
        File.Copy(Path.Combine(vaeDir, "diffusion_pytorch_model.safetensors"), Path.Combine(dir.Path, "diffusion_pytorch_model.safetensors"));
        return dir;
    }

    private static TempDir WithWeightsChange(Action<Dictionary<string, (int[] Shape, float[] Data)>> change)
    {
        var dir = new TempDir();
        File.Copy(Path.Combine(FixtureVaeDir, "config.json"), Path.Combine(dir.Path, "config.json"));
        var tensors = ReadAll(Path.Combine(FixtureVaeDir, "diffusion_pytorch_model.safetensors"));
        change(tensors);
        WriteSafetensors(Path.Combine(dir.Path, "diffusion_pytorch_model.safetensors"),
            tensors.Select(t => (t.Key, t.Value.Shape)).ToList(), (name, _) => tensors[name].Data);
        return dir;
    }
}
