using System.Text;
using Sora.Native.Loading;
using Sora.Native.Wan;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Loading;

/// <summary>
/// Single files that lie — truncated, bit-flipped, mis-shaped, contradicted by their config — fail with one clear
/// error naming the file (and the tensor or key), never a crash or a half-loaded model.
/// </summary>
public sealed class SingleFileBadInputTests : IDisposable
{
    private readonly TempDir _dir = new();
    private static readonly string Transformer = SingleFileFixtureTests.File("wan2.1_t2v_tiny_bf16.safetensors");

    public void Dispose() => _dir.Dispose();

    private string Copy(byte[] bytes, string name = "model.safetensors")
    {
        string path = Path.Combine(_dir.Path, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Loads the transformer; returns null on success, else the exception, which must be a clean one naming the file.</summary>
    private static Exception? TryLoad(string path, string? config = null)
    {
        using var backend = NewCpuBackend();
        try
        {
            WanTransformer.Load(path, backend, config ?? SingleFileFixtureTests.Config).Dispose();
            return null;
        }
        catch (Exception e) when (e is ModelLoadException or NotSupportedException)
        {
            Assert.True(e.Message.Contains(Path.GetFileName(path)), e.Message);
            Assert.DoesNotContain('\n', e.Message);
            return e;
        }
    }

    [Fact]
    public void Every_truncation_fails_naming_the_file()
    {
        var bytes = File.ReadAllBytes(Transformer);
        var rng = new Random(5);
        long header = BitConverter.ToInt64(bytes, 0) + 8;
        var cuts = new[] { 0, 4, 8, 9, (int)header / 2, (int)header - 1, (int)header, (int)header + 1, bytes.Length - 1 }
            .Concat(Enumerable.Range(0, 20).Select(_ => rng.Next(bytes.Length)));
        foreach (int cut in cuts)
            Assert.NotNull(TryLoad(Copy(bytes[..cut])));
    }

    [Fact]
    public void Bit_flips_in_the_header_fail_cleanly_or_load()
    {
        var bytes = File.ReadAllBytes(Transformer);
        long header = BitConverter.ToInt64(bytes, 0) + 8;
        var rng = new Random(9);
        int failures = 0;
        for (int i = 0; i < 60; i++)
        {
            var flipped = (byte[])bytes.Clone();
            int at = rng.Next((int)header);
            flipped[at] ^= (byte)(1 << rng.Next(8));
            if (TryLoad(Copy(flipped, $"flip{i}.safetensors")) is not null) failures++;
        }
        Assert.True(failures > 0); // the flips reached the parser
    }

    [Fact]
    public void A_header_that_lies_about_a_shape_names_the_tensor()
    {
        // Same byte count, other shape: [32, 32] → [16, 64] for one block's query.
        var text = File.ReadAllBytes(Transformer);
        long header = BitConverter.ToInt64(text, 0);
        string json = Encoding.UTF8.GetString(text, 8, (int)header);
        const string key = "\"model.diffusion_model.blocks.1.self_attn.q.weight\":{\"dtype\":\"BF16\",\"shape\":[32,32]";
        Assert.Contains(key, json);
        string lied = json.Replace(key, key.Replace("[32,32]", "[16,64]"));
        var bytes = text[..8].Concat(Encoding.UTF8.GetBytes(lied)).Concat(text[(8 + (int)header)..]).ToArray();
        var ex = TryLoad(Copy(bytes));
        Assert.IsType<ModelLoadException>(ex);
        Assert.Contains("blocks.1.attn1.to_q.weight", ex!.Message);
        Assert.Contains("[16, 64]", ex.Message);
        Assert.Contains("[32, 32]", ex.Message);
    }

    [Theory]
    [InlineData("\"dim\": 32", "\"dim\": 64", "dim = 64")]
    [InlineData("\"num_layers\": 2", "\"num_layers\": 3", "num_layers = 3")]
    [InlineData("\"text_dim\": 24", "\"text_dim\": 4096", "text_dim = 4096")]
    [InlineData("\"num_heads\": 2", "\"num_heads\": 3", "num_heads = 3")]
    [InlineData("\"patch_size\": [\n  1,\n  2,\n  2\n ]", "\"patch_size\": [1, 4, 4]", "patch_size = [1, 4, 4]")]
    public void A_config_that_contradicts_the_shapes_names_key_file_and_tensor(string from, string to, string mention)
    {
        string original = File.ReadAllText(SingleFileFixtureTests.Config);
        Assert.Contains(from, original);
        string config = Path.Combine(_dir.Path, "config.json");
        File.WriteAllText(config, original.Replace(from, to));
        using var backend = NewCpuBackend();
        var ex = Assert.Throws<ModelLoadException>(() => WanTransformer.Load(Transformer, backend, config).Dispose());
        Assert.Contains(config, ex.Message);
        Assert.Contains(mention, ex.Message);
    }

    [Fact]
    public void A_file_that_is_no_transformer_says_so()
    {
        using var backend = NewCpuBackend();
        var ex = Assert.Throws<ModelLoadException>(() => WanTransformer.Load(SingleFileFixtureTests.File("wan_2.1_vae_tiny_bf16.safetensors"), backend).Dispose());
        Assert.Contains("wan_2.1_vae_tiny_bf16.safetensors", ex.Message);
        Assert.Contains("'patch_embedding.weight'", ex.Message);
    }

    [Fact]
    public void A_missing_tensor_of_an_original_file_is_named()
    {
        var tensors = ReadAll(SingleFileFixtureTests.File("wan2.1_t2v_tiny_fp16.safetensors"));
        tensors.Remove("blocks.1.cross_attn.norm_k.weight");
        string path = Path.Combine(_dir.Path, "missing.safetensors");
        WriteSafetensors(path, tensors.Select(kv => (kv.Key, kv.Value.Shape)).ToList(), (n, _) => tensors[n].Data);
        var ex = TryLoad(path);
        Assert.Contains("missing tensor 'blocks.1.attn2.norm_k.weight'", ex!.Message);
    }

    [Fact]
    public void A_scale_without_its_weight_is_named()
    {
        var tensors = ReadAll(SingleFileFixtureTests.File("wan2.1_t2v_tiny_fp16.safetensors"));
        tensors["blocks.0.self_attn.x.scale_weight"] = ([1], [0.5f]);
        string path = Path.Combine(_dir.Path, "scale.safetensors");
        WriteSafetensors(path, tensors.Select(kv => (kv.Key, kv.Value.Shape)).ToList(), (n, _) => tensors[n].Data);
        var ex = TryLoad(path);
        Assert.Contains("'blocks.0.self_attn.x.scale_weight' scales 'blocks.0.self_attn.x.weight'", ex!.Message);
    }

    [Fact]
    public void A_truncated_lora_names_the_lora_file()
    {
        var bytes = File.ReadAllBytes(SingleFileFixtureTests.File("lora_tiny_comfy.safetensors"));
        string lora = Copy(bytes[..(bytes.Length - 7)], "lora.safetensors");
        using var backend = NewCpuBackend();
        var ex = Assert.Throws<ModelLoadException>(() => WanTransformer.Load(Transformer, backend, SingleFileFixtureTests.Config, [new LoraSpec(lora)]).Dispose());
        Assert.Contains("lora.safetensors", ex.Message);
    }

    [Fact]
    public void Every_truncation_of_the_vae_file_fails_naming_it()
    {
        var bytes = File.ReadAllBytes(SingleFileFixtureTests.File("wan_2.1_vae_tiny_bf16.safetensors"));
        var rng = new Random(7);
        using var backend = NewCpuBackend();
        foreach (int cut in new[] { 0, 7, 100 }.Concat(Enumerable.Range(0, 8).Select(_ => rng.Next(bytes.Length))))
        {
            string path = Copy(bytes[..cut], "vae.safetensors");
            var ex = Assert.Throws<ModelLoadException>(() => WanVae.Load(path, backend).Dispose());
            Assert.Contains("vae.safetensors", ex.Message);
        }
    }
}
