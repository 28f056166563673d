using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Sora.Bench;

/// <summary>
/// Model folders with generated weights for the whole-model benchmarks, in the diffusers layout (config.json +
/// diffusion_pytorch_model.safetensors) and with the same configurations as bench/diffusers_peer.py. The tensor
/// lists are written from diffusers' module structure (checked against `diffusers_peer.py --dump-shapes`).
/// Values: uniform with variance 1/fan_in for weights, near 1 for norm scales, small for biases and tables,
/// from a fixed seed per tensor, so activations stay of order 1 as in a trained model (no zeros, no denormals).
/// </summary>
public static class WanBenchModels
{
    /// <summary>Wan2.2's VAE (Wan2.2-TI2V-5B): base 160, decoder base 256, z 48, residual blocks, 2×2 patches.</summary>
    public static readonly (int BaseDim, int DecoderBaseDim, int ZDim, int[] DimMult, int NumResBlocks, bool[] TemperalDownsample, int PatchChannels)
        Vae22 = (160, 256, 48, [1, 2, 4, 4], 2, [false, true, true], 3 * 2 * 2);

    /// <summary>Wan2.1-T2V-1.3B's transformer widths.</summary>
    public static readonly (int Heads, int HeadDim, int Layers, int Ffn, int TextDim, int FreqDim, int Channels)
        Transformer13B = (12, 128, 30, 8960, 4096, 256, 16);

    public static void WriteVae22(string dir)
    {
        var c = Vae22;
        WriteSafetensors(Path.Combine(dir, "diffusion_pytorch_model.safetensors"), Vae22Shapes());
        WriteJson(Path.Combine(dir, "config.json"), new Dictionary<string, object?>
        {
            ["_class_name"] = "AutoencoderKLWan", ["attn_scales"] = Array.Empty<int>(), ["base_dim"] = c.BaseDim,
            ["decoder_base_dim"] = c.DecoderBaseDim, ["dim_mult"] = c.DimMult, ["dropout"] = 0.0,
            ["in_channels"] = c.PatchChannels, ["out_channels"] = c.PatchChannels, ["is_residual"] = true,
            ["num_res_blocks"] = c.NumResBlocks, ["patch_size"] = 2, ["scale_factor_spatial"] = 16,
            ["scale_factor_temporal"] = 4, ["temperal_downsample"] = c.TemperalDownsample, ["z_dim"] = c.ZDim,
            ["latents_mean"] = new float[c.ZDim], ["latents_std"] = Enumerable.Repeat(1f, c.ZDim).ToArray(),
        });
    }

    public static void WriteTransformer13B(string dir)
    {
        var c = Transformer13B;
        WriteSafetensors(Path.Combine(dir, "diffusion_pytorch_model.safetensors"), TransformerShapes());
        WriteJson(Path.Combine(dir, "config.json"), new Dictionary<string, object?>
        {
            ["_class_name"] = "WanTransformer3DModel", ["added_kv_proj_dim"] = null, ["attention_head_dim"] = c.HeadDim,
            ["cross_attn_norm"] = true, ["eps"] = 1e-6, ["ffn_dim"] = c.Ffn, ["freq_dim"] = c.FreqDim, ["image_dim"] = null,
            ["in_channels"] = c.Channels, ["num_attention_heads"] = c.Heads, ["num_layers"] = c.Layers,
            ["out_channels"] = c.Channels, ["patch_size"] = new[] { 1, 2, 2 }, ["qk_norm"] = "rms_norm_across_heads",
            ["rope_max_seq_len"] = 1024, ["text_dim"] = c.TextDim, ["pos_embed_seq_len"] = null,
        });
    }

    /// <summary>Every tensor of diffusers' AutoencoderKLWan with is_residual (WanResidualDownBlock / WanResidualUpBlock).</summary>
    public static List<(string Name, int[] Shape)> Vae22Shapes()
    {
        var c = Vae22;
        var list = new List<(string, int[])>();
        void Conv(string name, params int[] shape)
        {
            list.Add((name + ".weight", shape));
            list.Add((name + ".bias", [shape[0]]));
        }
        void Res(string name, int i, int o)
        {
            list.Add((name + ".norm1.gamma", [i, 1, 1, 1]));
            Conv(name + ".conv1", o, i, 3, 3, 3);
            list.Add((name + ".norm2.gamma", [o, 1, 1, 1]));
            Conv(name + ".conv2", o, o, 3, 3, 3);
            if (i != o) Conv(name + ".conv_shortcut", o, i, 1, 1, 1);
        }
        void Mid(string name, int ch)
        {
            Res(name + ".resnets.0", ch, ch);
            list.Add((name + ".attentions.0.norm.gamma", [ch, 1, 1]));
            Conv(name + ".attentions.0.to_qkv", 3 * ch, ch, 1, 1);
            Conv(name + ".attentions.0.proj", ch, ch, 1, 1);
            Res(name + ".resnets.1", ch, ch);
        }

        int stages = c.DimMult.Length;
        var enc = new[] { 1 }.Concat(c.DimMult).Select(m => c.BaseDim * m).ToArray();
        Conv("encoder.conv_in", enc[0], c.PatchChannels, 3, 3, 3);
        for (int s = 0; s < stages; s++)
        {
            for (int r = 0, i = enc[s]; r < c.NumResBlocks; r++, i = enc[s + 1]) Res($"encoder.down_blocks.{s}.resnets.{r}", i, enc[s + 1]);
            if (s == stages - 1) continue;
            Conv($"encoder.down_blocks.{s}.downsampler.resample.1", enc[s + 1], enc[s + 1], 3, 3);
            if (c.TemperalDownsample[s]) Conv($"encoder.down_blocks.{s}.downsampler.time_conv", enc[s + 1], enc[s + 1], 3, 1, 1);
        }
        Mid("encoder.mid_block", enc[^1]);
        list.Add(("encoder.norm_out.gamma", [enc[^1], 1, 1, 1]));
        Conv("encoder.conv_out", 2 * c.ZDim, enc[^1], 3, 3, 3);
        Conv("quant_conv", 2 * c.ZDim, 2 * c.ZDim, 1, 1, 1);
        Conv("post_quant_conv", c.ZDim, c.ZDim, 1, 1, 1);

        var dec = new[] { c.DimMult[^1] }.Concat(c.DimMult.Reverse()).Select(m => c.DecoderBaseDim * m).ToArray();
        var temporalUp = c.TemperalDownsample.Reverse().ToArray();
        Conv("decoder.conv_in", dec[0], c.ZDim, 3, 3, 3);
        Mid("decoder.mid_block", dec[0]);
        for (int s = 0; s < stages; s++)
        {
            for (int r = 0, i = dec[s]; r <= c.NumResBlocks; r++, i = dec[s + 1]) Res($"decoder.up_blocks.{s}.resnets.{r}", i, dec[s + 1]);
            if (s == stages - 1) continue;
            Conv($"decoder.up_blocks.{s}.upsampler.resample.1", dec[s + 1], dec[s + 1], 3, 3);
            if (temporalUp[s]) Conv($"decoder.up_blocks.{s}.upsampler.time_conv", 2 * dec[s + 1], dec[s + 1], 3, 1, 1);
        }
        list.Add(("decoder.norm_out.gamma", [dec[^1], 1, 1, 1]));
        Conv("decoder.conv_out", c.PatchChannels, dec[^1], 3, 3, 3);
        return list;
    }

    /// <summary>Every tensor of diffusers' WanTransformer3DModel (text-to-video: no image embedder, no added K/V).</summary>
    public static List<(string Name, int[] Shape)> TransformerShapes()
    {
        var c = Transformer13B;
        int d = c.Heads * c.HeadDim;
        var list = new List<(string, int[])>();
        void Linear(string name, int outF, int inF)
        {
            list.Add((name + ".weight", [outF, inF]));
            list.Add((name + ".bias", [outF]));
        }
        list.Add(("patch_embedding.weight", [d, c.Channels, 1, 2, 2]));
        list.Add(("patch_embedding.bias", [d]));
        Linear("condition_embedder.time_embedder.linear_1", d, c.FreqDim);
        Linear("condition_embedder.time_embedder.linear_2", d, d);
        Linear("condition_embedder.time_proj", 6 * d, d);
        Linear("condition_embedder.text_embedder.linear_1", d, c.TextDim);
        Linear("condition_embedder.text_embedder.linear_2", d, d);
        for (int b = 0; b < c.Layers; b++)
        {
            string p = $"blocks.{b}";
            list.Add((p + ".scale_shift_table", [1, 6, d]));
            foreach (string attn in new[] { "attn1", "attn2" })
            {
                foreach (string proj in new[] { "to_q", "to_k", "to_v", "to_out.0" }) Linear($"{p}.{attn}.{proj}", d, d);
                list.Add(($"{p}.{attn}.norm_q.weight", [d]));
                list.Add(($"{p}.{attn}.norm_k.weight", [d]));
            }
            list.Add((p + ".norm2.weight", [d]));
            list.Add((p + ".norm2.bias", [d]));
            Linear(p + ".ffn.net.0.proj", c.Ffn, d);
            Linear(p + ".ffn.net.2", d, c.Ffn);
        }
        Linear("proj_out", c.Channels * 4, d);
        list.Add(("scale_shift_table", [1, 2, d]));
        return list;
    }

    /// <summary>
    /// Writes F32 tensors as safetensors (8-byte header length, JSON header, raw little-endian data), generating
    /// each tensor's values only when it is written, so a multi-gigabyte file never sits in memory.
    /// </summary>
    private static void WriteSafetensors(string path, List<(string Name, int[] Shape)> tensors)
    {
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            long bytes = 4 * Count(shape);
            header[name] = new { dtype = "F32", shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        stream.Write(BitConverter.GetBytes((ulong)padded));
        stream.Write(json);
        for (int i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');
        foreach (var (name, shape) in tensors) stream.Write(MemoryMarshal.AsBytes(Values(name, shape).AsSpan()));
    }

    private static float[] Values(string name, int[] shape)
    {
        var data = new float[Count(shape)];
        // SplitMix64 seeded by the name: deterministic, and fast enough for a billion values.
        ulong state = (ulong)name.Aggregate(17L, (h, ch) => h * 31 + ch);
        float Next()
        {
            ulong z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return ((z ^ (z >> 31)) >> 40) * (1f / (1 << 24)) * 2 - 1; // uniform in [−1, 1)
        }
        bool small = name.EndsWith(".bias") || name.EndsWith("scale_shift_table");
        bool norm = !small && (name.EndsWith(".gamma") || name.Contains("norm"));
        float amplitude = norm || small ? 0.1f : MathF.Sqrt(3f * shape[0] / data.Length);
        float centre = norm ? 1f : 0f;
        for (int i = 0; i < data.Length; i++) data[i] = centre + amplitude * Next();
        return data;
    }

    private static long Count(int[] shape) => shape.Aggregate(1L, (a, b) => a * b);

    private static void WriteJson(string path, Dictionary<string, object?> config) =>
        File.WriteAllText(path, JsonSerializer.Serialize(config));
}
