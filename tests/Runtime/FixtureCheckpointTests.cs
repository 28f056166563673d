using System.Text.Json;
using Sora.Runtime;
using Sora.Runtime.Safetensors;
using Xunit;

namespace Sora.Tests.Runtime;

/// <summary>
/// The diffusers-written fixture checkpoints read back with exactly the names and shapes that the architecture
/// (shared/docs/wan-architecture.md sections 2.1, 3.7, 4.1) predicts from each component's config.json.
/// The expected maps are generated here from the configs, not taken from the files.
/// </summary>
public sealed class FixtureCheckpointTests
{
    private static readonly string ModelDir = Path.Combine(AppContext.BaseDirectory, "fixtures", "wan-small", "model");

    private static JsonElement Config(string component)
        => JsonDocument.Parse(File.ReadAllBytes(Path.Combine(ModelDir, component, "config.json"))).RootElement;

    private static int I(JsonElement c, string key) => c.GetProperty(key).GetInt32();

    private static void AssertMatches(SafetensorsFile file, Dictionary<string, int[]> expected, int expectedCount)
    {
        Assert.Equal(expectedCount, expected.Count);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), file.Names.Order(StringComparer.Ordinal));
        foreach (var (name, shape) in expected)
        {
            var e = file.GetEntry(name);
            Assert.True(shape.SequenceEqual(e.Shape), $"{name}: file [{string.Join(",", e.Shape)}], expected [{string.Join(",", shape)}]");
            Assert.Equal(DType.F32, e.DType);
            Assert.All(file.Get(name).ToFloatArray(), v => Assert.True(float.IsFinite(v), $"{name} holds {v}"));
        }
    }

    [Fact]
    public void TransformerNamesAndShapesFollowTheArchitecture()
    {
        var c = Config("transformer");
        int d = I(c, "num_attention_heads") * I(c, "attention_head_dim"), ffn = I(c, "ffn_dim"), layers = I(c, "num_layers");
        int[] patch = c.GetProperty("patch_size").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var x = new Dictionary<string, int[]>
        {
            ["patch_embedding.weight"] = [d, I(c, "in_channels"), .. patch],
            ["patch_embedding.bias"] = [d],
            ["condition_embedder.time_embedder.linear_1.weight"] = [d, I(c, "freq_dim")],
            ["condition_embedder.time_embedder.linear_1.bias"] = [d],
            ["condition_embedder.time_embedder.linear_2.weight"] = [d, d],
            ["condition_embedder.time_embedder.linear_2.bias"] = [d],
            ["condition_embedder.time_proj.weight"] = [6 * d, d],
            ["condition_embedder.time_proj.bias"] = [6 * d],
            ["condition_embedder.text_embedder.linear_1.weight"] = [d, I(c, "text_dim")],
            ["condition_embedder.text_embedder.linear_1.bias"] = [d],
            ["condition_embedder.text_embedder.linear_2.weight"] = [d, d],
            ["condition_embedder.text_embedder.linear_2.bias"] = [d],
            ["proj_out.weight"] = [I(c, "out_channels") * patch[0] * patch[1] * patch[2], d],
            ["proj_out.bias"] = [I(c, "out_channels") * patch[0] * patch[1] * patch[2]],
            ["scale_shift_table"] = [1, 2, d],
        };
        for (int i = 0; i < layers; i++)
        {
            string b = $"blocks.{i}.";
            foreach (string attn in new[] { "attn1", "attn2" })
            {
                foreach (string p in new[] { "to_q", "to_k", "to_v", "to_out.0" })
                {
                    x[$"{b}{attn}.{p}.weight"] = [d, d];
                    x[$"{b}{attn}.{p}.bias"] = [d];
                }
                x[$"{b}{attn}.norm_q.weight"] = [d];
                x[$"{b}{attn}.norm_k.weight"] = [d];
            }
            x[b + "norm2.weight"] = [d];
            x[b + "norm2.bias"] = [d];
            x[b + "ffn.net.0.proj.weight"] = [ffn, d];
            x[b + "ffn.net.0.proj.bias"] = [ffn];
            x[b + "ffn.net.2.weight"] = [d, ffn];
            x[b + "ffn.net.2.bias"] = [d];
            x[b + "scale_shift_table"] = [1, 6, d];
        }
        using var file = SafetensorsFile.Open(Path.Combine(ModelDir, "transformer", "diffusion_pytorch_model.safetensors"));
        AssertMatches(file, x, 15 + 27 * layers); // 825 for the 1.3B model's 30 layers, as the spec counts
        Assert.Equal("pt", file.Metadata["format"]);
        // literal spot checks for the tiny config (dim 32, 2 heads × 16, ffn 64, in 4, patch 1×2×2)
        Assert.Equal(new[] { 32, 4, 1, 2, 2 }, file.GetEntry("patch_embedding.weight").Shape);
        Assert.Equal(new[] { 64, 32 }, file.GetEntry("blocks.1.ffn.net.0.proj.weight").Shape);
        Assert.Equal(new[] { 1, 2, 32 }, file.GetEntry("scale_shift_table").Shape);
        Assert.Equal(new[] { 192, 32 }, file.GetEntry("condition_embedder.time_proj.weight").Shape);
        Assert.Equal(new[] { 16, 32 }, file.GetEntry("proj_out.weight").Shape);
    }

    [Fact]
    public void TextEncoderNamesAndShapesFollowTheArchitecture()
    {
        var c = Config("text_encoder");
        int dm = I(c, "d_model"), heads = I(c, "num_heads"), inner = heads * I(c, "d_kv"), ff = I(c, "d_ff"), layers = I(c, "num_layers");
        var x = new Dictionary<string, int[]>
        {
            ["shared.weight"] = [I(c, "vocab_size"), dm],
            ["encoder.final_layer_norm.weight"] = [dm],
        };
        for (int i = 0; i < layers; i++)
        {
            string b = $"encoder.block.{i}.layer.";
            x[b + "0.layer_norm.weight"] = [dm];
            foreach (string p in new[] { "q", "k", "v" }) x[$"{b}0.SelfAttention.{p}.weight"] = [inner, dm];
            x[b + "0.SelfAttention.o.weight"] = [dm, inner];
            x[b + "0.SelfAttention.relative_attention_bias.weight"] = [I(c, "relative_attention_num_buckets"), heads];
            x[b + "1.layer_norm.weight"] = [dm];
            x[b + "1.DenseReluDense.wi_0.weight"] = [ff, dm];
            x[b + "1.DenseReluDense.wi_1.weight"] = [ff, dm];
            x[b + "1.DenseReluDense.wo.weight"] = [dm, ff];
        }
        using var file = SafetensorsFile.Open(Path.Combine(ModelDir, "text_encoder", "model.safetensors"));
        AssertMatches(file, x, 2 + 10 * layers); // 242 for umt5-xxl's 24 layers
        Assert.Equal(new[] { 150, 24 }, file.GetEntry("shared.weight").Shape);
        Assert.Equal(new[] { 32, 4 }, file.GetEntry("encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight").Shape);
        Assert.Equal(new[] { 24, 32 }, file.GetEntry("encoder.block.0.layer.0.SelfAttention.o.weight").Shape);
    }

    [Fact]
    public void VaeNamesAndShapesFollowTheArchitecture()
    {
        var c = Config("vae");
        int baseDim = I(c, "base_dim"), z = I(c, "z_dim"), resBlocks = I(c, "num_res_blocks");
        int[] mult = c.GetProperty("dim_mult").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        bool[] tdown = c.GetProperty("temperal_downsample").EnumerateArray().Select(v => v.GetBoolean()).ToArray();
        var x = new Dictionary<string, int[]>();
        void Conv(string p, params int[] w) { x[p + ".weight"] = w; x[p + ".bias"] = [w[0]]; }
        void Res(string p, int cin, int cout)
        {
            x[p + ".norm1.gamma"] = [cin, 1, 1, 1];
            Conv(p + ".conv1", cout, cin, 3, 3, 3);
            x[p + ".norm2.gamma"] = [cout, 1, 1, 1];
            Conv(p + ".conv2", cout, cout, 3, 3, 3);
            if (cin != cout) Conv(p + ".conv_shortcut", cout, cin, 1, 1, 1);
        }
        void Mid(string p, int ch)
        {
            Res(p + ".resnets.0", ch, ch);
            x[p + ".attentions.0.norm.gamma"] = [ch, 1, 1];
            Conv(p + ".attentions.0.to_qkv", 3 * ch, ch, 1, 1);
            Conv(p + ".attentions.0.proj", ch, ch, 1, 1);
            Res(p + ".resnets.1", ch, ch);
        }

        // encoder: flat down_blocks list of residual blocks and resamples (section 3.3)
        int[] dims = new[] { 1 }.Concat(mult).Select(m => baseDim * m).ToArray();
        Conv("encoder.conv_in", dims[0], 3, 3, 3, 3);
        int index = 0;
        for (int i = 0; i < mult.Length; i++)
        {
            int cin = dims[i], cout = dims[i + 1];
            for (int r = 0; r < resBlocks; r++, cin = cout) Res($"encoder.down_blocks.{index++}", cin, cout);
            if (i == mult.Length - 1) continue;
            Conv($"encoder.down_blocks.{index}.resample.1", cout, cout, 3, 3);
            if (tdown[i]) Conv($"encoder.down_blocks.{index}.time_conv", cout, cout, 3, 1, 1);
            index++;
        }
        Mid("encoder.mid_block", dims[^1]);
        x["encoder.norm_out.gamma"] = [dims[^1], 1, 1, 1];
        Conv("encoder.conv_out", 2 * z, dims[^1], 3, 3, 3);
        Conv("quant_conv", 2 * z, 2 * z, 1, 1, 1);
        Conv("post_quant_conv", z, z, 1, 1, 1);

        // decoder: up_blocks with num_res_blocks + 1 resnets; each upsampler's conv halves the channels (section 3.4)
        int[] ddims = new[] { mult[^1] }.Concat(mult.Reverse()).Select(m => baseDim * m).ToArray();
        Conv("decoder.conv_in", ddims[0], z, 3, 3, 3);
        Mid("decoder.mid_block", ddims[0]);
        for (int i = 0; i < mult.Length; i++)
        {
            int cin = i == 0 ? ddims[0] : ddims[i] / 2, cout = ddims[i + 1];
            for (int r = 0; r <= resBlocks; r++, cin = cout) Res($"decoder.up_blocks.{i}.resnets.{r}", cin, cout);
            if (i == mult.Length - 1) continue;
            Conv($"decoder.up_blocks.{i}.upsamplers.0.resample.1", cout / 2, cout, 3, 3);
            if (tdown[mult.Length - 2 - i]) Conv($"decoder.up_blocks.{i}.upsamplers.0.time_conv", 2 * cout, cout, 3, 1, 1);
        }
        x["decoder.norm_out.gamma"] = [ddims[^1], 1, 1, 1];
        Conv("decoder.conv_out", 3, ddims[^1], 3, 3, 3);

        using var file = SafetensorsFile.Open(Path.Combine(ModelDir, "vae", "diffusion_pytorch_model.safetensors"));
        AssertMatches(file, x, 146); // counted by hand from sections 3.3/3.4 for base 8, mult [1,2,2,2], 1 res block
        Assert.Equal(new[] { 8, 3, 3, 3, 3 }, file.GetEntry("encoder.conv_in.weight").Shape);
        Assert.Equal(new[] { 16, 8, 1, 1, 1 }, file.GetEntry("encoder.down_blocks.2.conv_shortcut.weight").Shape);
        Assert.Equal(new[] { 32, 16, 3, 1, 1 }, file.GetEntry("decoder.up_blocks.0.upsamplers.0.time_conv.weight").Shape);
        Assert.Equal(new[] { 8, 16, 3, 3 }, file.GetEntry("decoder.up_blocks.2.upsamplers.0.resample.1.weight").Shape);
        Assert.Equal(new[] { 3, 8, 3, 3, 3 }, file.GetEntry("decoder.conv_out.weight").Shape);
    }
}
