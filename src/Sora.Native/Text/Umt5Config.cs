using System.Text.Json;
using Sora.Native.Loading;

namespace Sora.Native.Text;

/// <summary>The fields of a transformers UMT5 config.json the encoder uses (umt5-xxl values in comments).</summary>
public sealed record Umt5Config(
    int DModel,          // 4096
    int DKv,             // 64
    int DFf,             // 10240
    int NumHeads,        // 64
    int NumLayers,       // 24
    int VocabSize,       // 256384
    int RelativeBuckets, // 32
    int RelativeMaxDistance, // 128
    float LayerNormEpsilon)  // 1e-6
{
    public int InnerDim => NumHeads * DKv;

    public static Umt5Config Load(string path)
    {
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: text encoder config not found");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var r = doc.RootElement;
            string modelType = Str(r, "model_type", "umt5");
            if (modelType != "umt5")
                throw new ModelLoadException($"{path}: model_type '{modelType}' is not supported (umt5: a relative bias in every layer)");
            // Gated GELU (tanh form) is the umT5 / T5 v1.1 feed-forward; other variants are not implemented.
            string ffn = Str(r, "feed_forward_proj", "gated-gelu");
            string act = Str(r, "dense_act_fn", "gelu_new");
            if (ffn != "gated-gelu" || act is not ("gelu_new" or "gelu_pytorch_tanh"))
                throw new ModelLoadException($"{path}: feed_forward_proj '{ffn}' with dense_act_fn '{act}' is not supported (gated-gelu with gelu_new is)");
            var config = new Umt5Config(
                Int(r, "d_model"), Int(r, "d_kv"), Int(r, "d_ff"), Int(r, "num_heads"), Int(r, "num_layers"),
                Int(r, "vocab_size"), Int(r, "relative_attention_num_buckets", 32), Int(r, "relative_attention_max_distance", 128),
                r.TryGetProperty("layer_norm_epsilon", out var eps) ? eps.GetSingle() : 1e-6f);
            if (config.DModel <= 0 || config.DKv <= 0 || config.DFf <= 0 || config.NumHeads <= 0 || config.NumLayers <= 0 || config.VocabSize <= 0 || config.RelativeBuckets < 4)
                throw new ModelLoadException($"{path}: invalid sizes in {config}");
            return config;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            throw new ModelLoadException($"{path}: malformed config: {e.Message}", e);
        }

        static int Int(JsonElement r, string key, int? fallback = null)
            => r.TryGetProperty(key, out var v) ? v.GetInt32()
               : fallback ?? throw new KeyNotFoundException($"missing key '{key}'");

        static string Str(JsonElement r, string key, string fallback)
            => r.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : fallback;
    }
}
