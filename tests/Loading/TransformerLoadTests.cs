using System.Text.Json.Nodes;
using Sora.Native.Loading;
using Sora.Native.Pipeline;
using Sora.Native.Wan;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Loading;

/// <summary>Binding errors of the transformer and model-folder checks: each names the file and the tensor or key.</summary>
public sealed class TransformerLoadTests
{
    private static string FixtureModel => Path.Combine(FixtureDir, "model");
    private static string FixtureTransformer => Path.Combine(FixtureModel, "transformer");
    private const string WeightsFile = "diffusion_pytorch_model.safetensors";

    /// <summary>A copy of the fixture transformer with its tensors altered by <paramref name="edit"/> and its config by <paramref name="editConfig"/>.</summary>
    private static TempDir AlteredTransformer(Action<Dictionary<string, (int[] Shape, float[] Data)>>? edit = null, Action<JsonObject>? editConfig = null)
    {
        var dir = new TempDir();
        var tensors = ReadAll(Path.Combine(FixtureTransformer, WeightsFile));
        edit?.Invoke(tensors);
        WriteSafetensors(Path.Combine(dir.Path, WeightsFile), tensors.Select(kv => (kv.Key, kv.Value.Shape)).ToList(), (name, _) => tensors[name].Data);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureTransformer, "config.json")))!.AsObject();
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), config.ToJsonString());
        return dir;
    }

    private static ModelLoadException LoadFails(string dir)
    {
        using var backend = NewCpuBackend();
        return Assert.Throws<ModelLoadException>(() => WanTransformer.Load(dir, backend).Dispose());
    }

    [Fact]
    public void The_unaltered_copy_loads()
    {
        using var dir = AlteredTransformer();
        using var backend = NewCpuBackend();
        using var model = WanTransformer.Load(dir.Path, backend);
        Assert.Equal(32, model.Config.Dim);
    }

    [Fact]
    public void A_missing_tensor_is_named()
    {
        using var dir = AlteredTransformer(t => t.Remove("blocks.1.attn2.norm_k.weight"));
        var ex = LoadFails(dir.Path);
        Assert.Contains("missing tensor 'blocks.1.attn2.norm_k.weight'", ex.Message);
    }

    [Fact]
    public void A_misshaped_tensor_is_named_with_both_shapes()
    {
        using var dir = AlteredTransformer(t => t["proj_out.weight"] = ([16, 16], new float[256]));
        var ex = LoadFails(dir.Path);
        Assert.Contains("'proj_out.weight'", ex.Message);
        Assert.Contains("[16, 16]", ex.Message);
        Assert.Contains("[16, 32]", ex.Message);
    }

    [Fact]
    public void An_unexpected_tensor_is_named()
    {
        using var dir = AlteredTransformer(t => t["blocks.0.attn2.add_k_proj.weight"] = ([32, 32], new float[1024]));
        var ex = LoadFails(dir.Path);
        Assert.Contains("blocks.0.attn2.add_k_proj.weight", ex.Message);
        Assert.Contains("unexpected", ex.Message);
    }

    [Theory]
    [InlineData("num_attention_heads")]
    [InlineData("ffn_dim")]
    [InlineData("patch_size")]
    public void A_missing_config_key_is_named_with_the_file(string key)
    {
        using var dir = AlteredTransformer(editConfig: c => c.Remove(key));
        var ex = LoadFails(dir.Path);
        Assert.Contains($"'{key}'", ex.Message);
        Assert.Contains("config.json", ex.Message);
    }

    [Theory]
    [InlineData("image_dim", "1280")]
    [InlineData("qk_norm", "\"rms_norm\"")]
    [InlineData("num_layers", "\"two\"")]
    [InlineData("attention_head_dim", "0")]
    public void Unsupported_or_malformed_config_values_are_named(string key, string value)
    {
        using var dir = AlteredTransformer(editConfig: c => c[key] = JsonNode.Parse(value));
        var ex = LoadFails(dir.Path);
        Assert.Contains(key, ex.Message);
    }

    [Fact]
    public void Unknown_config_keys_are_ignored()
    {
        using var dir = AlteredTransformer(editConfig: c => c["some_future_option"] = 42);
        using var backend = NewCpuBackend();
        using var model = WanTransformer.Load(dir.Path, backend);
        Assert.Equal(2, model.Config.NumLayers);
    }

    [Fact]
    public void A_model_folder_without_its_manifest_is_rejected()
    {
        using var dir = new TempDir();
        var ex = Assert.Throws<ModelLoadException>(() => ModelFolder.Open(dir.Path));
        Assert.Contains("model_index.json", ex.Message);
    }

    [Theory]
    [InlineData("transformer")]
    [InlineData("vae")]
    [InlineData("scheduler")]
    public void A_missing_component_folder_is_named(string component)
    {
        using var dir = new TempDir();
        CopyDirectory(FixtureModel, dir.Path);
        Directory.Delete(Path.Combine(dir.Path, component), recursive: true);
        var ex = Assert.Throws<ModelLoadException>(() => ModelFolder.Open(dir.Path));
        Assert.Contains(component, ex.Message);
    }

    [Fact]
    public void The_scheduler_class_comes_from_the_scheduler_config()
    {
        var folder = ModelFolder.Open(FixtureModel);
        Assert.Equal("UniPCMultistepScheduler", folder.SchedulerClass);
        Assert.NotNull(folder.TextEncoderDir);
        Assert.NotNull(folder.TokenizerDir);
    }

    [Fact]
    public void A_pipeline_without_a_text_encoder_needs_prompt_embeddings()
    {
        using var dir = new TempDir();
        CopyDirectory(FixtureModel, dir.Path);
        Directory.Delete(Path.Combine(dir.Path, "text_encoder"), recursive: true);
        using var backend = NewCpuBackend();
        using var pipeline = WanPipeline.Load(dir.Path, backend);
        var options = new GenerationOptions { Prompt = "a cat", Frames = 5, Height = 16, Width = 16, Steps = 1, Seed = 1 };
        var ex = Assert.Throws<ModelLoadException>(() => pipeline.Generate(options));
        Assert.Contains("text_encoder", ex.Message);
    }

    private static void CopyDirectory(string source, string target)
    {
        foreach (var dir in Directory.GetDirectories(source, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(dir.Replace(source, target));
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
            File.Copy(file, file.Replace(source, target));
    }
}
