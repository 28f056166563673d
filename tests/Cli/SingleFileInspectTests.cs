using System.Globalization;
using Xunit;

namespace Sora.Tests.Cli;

/// <summary><c>sora inspect</c> on single files: the component and layout, quant types per tensor, and the memory the weights take.</summary>
public sealed class SingleFileInspectTests
{
    private static string Fixture(string dir, string file) => Path.Combine(AppContext.BaseDirectory, "fixtures", dir, file);

    [Fact]
    public void A_scaled_fp8_transformer_file_shows_layout_dtypes_scales_and_memory()
    {
        string path = Fixture("single-file-small", "wan2.1_t2v_tiny_fp8_scaled.safetensors");
        var r = CliRunner.Run("inspect", path);
        Assert.True(r.Code == 0, r.Err);
        long bytes = new FileInfo(path).Length - 8 - BitConverter.ToInt64(File.ReadAllBytes(path), 0);
        Assert.Contains("F8_E4M3: 21", r.Out); // 20 linears and the marker
        Assert.Contains("component: transformer (Wan original", r.Out);
        Assert.Contains("scaled fp8: 20 weights with a scale_weight", r.Out);
        Assert.Contains($"weights in memory once loaded: {(bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture)} KiB", r.Out);
        Assert.Single(r.Out.Split('\n'), l => l.TrimStart().StartsWith("blocks.0.self_attn.q.weight ", StringComparison.Ordinal) && l.Contains(" F8_E4M3 "));
    }

    [Fact]
    public void A_prefixed_file_says_its_prefix_and_a_vae_and_loras_are_recognised()
    {
        Assert.Contains("prefix 'model.diffusion_model.'", CliRunner.Run("inspect", Fixture("single-file-small", "wan2.1_t2v_tiny_bf16.safetensors")).Out);
        Assert.Contains("component: VAE (Wan original)", CliRunner.Run("inspect", Fixture("single-file-small", "wan_2.1_vae_tiny_bf16.safetensors")).Out);
        Assert.Contains("component: LoRA (ComfyUI/kohya)", CliRunner.Run("inspect", Fixture("single-file-small", "lora_tiny_comfy.safetensors")).Out);
        Assert.Contains("component: LoRA (diffusers/peft)", CliRunner.Run("inspect", Fixture("single-file-small", "lora_tiny_diffusers.safetensors")).Out);
    }

    [Fact]
    public void A_gguf_file_lists_each_tensor_with_its_quant_type_and_bytes()
    {
        string path = Fixture("gguf", "wan-tiny-Q4_K.gguf");
        var r = CliRunner.Run("inspect", path);
        Assert.True(r.Code == 0, r.Err);
        // q4_K: 144 bytes per 256 weights; blocks.0.self_attn.q.weight is [64, 256].
        var line = Assert.Single(r.Out.Split('\n'), l => l.TrimStart().StartsWith("blocks.0.self_attn.q.weight ", StringComparison.Ordinal));
        Assert.Contains(" q4_K ", line);
        Assert.Contains("[64, 256]", line);
        Assert.EndsWith("9.0 KiB", line.TrimEnd());
        Assert.Contains("GGUF v3, 6 tensors", r.Out);
        Assert.Contains("q4_K: 4", r.Out);
        Assert.Contains("component: transformer", r.Out);
    }

    [Fact]
    public void A_truncated_gguf_file_is_one_error_line()
    {
        var dir = CliRunner.NewTempDir();
        try
        {
            var bytes = File.ReadAllBytes(Fixture("gguf", "wan-tiny-Q8_0.gguf"));
            string path = Path.Combine(dir, "cut.gguf");
            File.WriteAllBytes(path, bytes[..100]);
            Assert.Contains("cut.gguf", CliRunner.Run("inspect", path).SingleError());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
