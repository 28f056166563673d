using Sora.Native.Loading;

namespace Sora.Native.Wan;

/// <summary>
/// Hyper-parameters of diffusers' <c>WanTransformer3DModel</c> (transformer/config.json). Wan2.1-T2V-1.3B:
/// 12 heads × 128, 30 layers, ffn 8960, 16 channels, text_dim 4096, freq_dim 256, patch (1, 2, 2).
/// Only the text-to-video variant is implemented: image_dim and added_kv_proj_dim (I2V) must be null.
/// </summary>
public sealed record WanTransformerConfig
{
    public required int NumAttentionHeads { get; init; }
    public required int AttentionHeadDim { get; init; }
    public required int InChannels { get; init; }
    public required int OutChannels { get; init; }
    public required int TextDim { get; init; }
    public required int FreqDim { get; init; }
    public required int FfnDim { get; init; }
    public required int NumLayers { get; init; }
    /// <summary>(pt, ph, pw): Conv3d kernel = stride of the patch embedding.</summary>
    public required int[] PatchSize { get; init; }
    public float Eps { get; init; } = 1e-6f;
    /// <summary>Affine LayerNorm (norm2) before cross-attention; false means no norm (and no norm2 tensors).</summary>
    public bool CrossAttnNorm { get; init; } = true;
    /// <summary>Post-patch grid positions must stay below this (the RoPE table length in diffusers).</summary>
    public int RopeMaxSeqLen { get; init; } = 1024;

    /// <summary>Inner width D = heads × head_dim.</summary>
    public int Dim => NumAttentionHeads * AttentionHeadDim;

    public int PatchVolume => PatchSize[0] * PatchSize[1] * PatchSize[2];

    /// <summary>Reads transformer/config.json; missing sizes and unsupported variants name the file and key.</summary>
    public static WanTransformerConfig Load(string path)
    {
        var json = ConfigJson.Load(path, "transformer config");
        string? className = json.String("_class_name");
        if (className is not null && className != "WanTransformer3DModel")
            throw json.Error("_class_name", $"'{className}' is not WanTransformer3DModel");
        // Image-to-video adds an image embedder and extra cross-attention projections: not implemented.
        foreach (string key in new[] { "image_dim", "added_kv_proj_dim", "pos_embed_seq_len" })
            if (!json.IsNull(key)) throw json.Error(key, "must be null: only the text-to-video transformer is supported");
        string qkNorm = json.String("qk_norm") ?? "rms_norm_across_heads";
        if (qkNorm != "rms_norm_across_heads")
            throw json.Error("qk_norm", $"'{qkNorm}' is not supported (Wan2.1 uses rms_norm_across_heads)");

        var config = new WanTransformerConfig
        {
            NumAttentionHeads = json.RequiredInt("num_attention_heads"),
            AttentionHeadDim = json.RequiredInt("attention_head_dim"),
            InChannels = json.RequiredInt("in_channels"),
            OutChannels = json.RequiredInt("out_channels"),
            TextDim = json.RequiredInt("text_dim"),
            FreqDim = json.RequiredInt("freq_dim"),
            FfnDim = json.RequiredInt("ffn_dim"),
            NumLayers = json.RequiredInt("num_layers"),
            PatchSize = json.RequiredIntArray("patch_size"),
            Eps = (float)json.Double("eps", 1e-6),
            CrossAttnNorm = json.Bool("cross_attn_norm", true),
            RopeMaxSeqLen = json.Int("rope_max_seq_len", 1024),
        };
        config.Validate(path);
        return config;
    }

    /// <summary>Throws a <see cref="ModelLoadException"/> naming the key whose value cannot describe a Wan transformer.</summary>
    public void Validate(string source)
    {
        void Positive(int value, string key)
        {
            if (value <= 0) throw new ModelLoadException($"{source}: {key} = {value} must be positive");
        }
        Positive(NumAttentionHeads, "num_attention_heads");
        Positive(AttentionHeadDim, "attention_head_dim");
        Positive(InChannels, "in_channels");
        Positive(OutChannels, "out_channels");
        Positive(TextDim, "text_dim");
        Positive(FreqDim, "freq_dim");
        Positive(FfnDim, "ffn_dim");
        Positive(NumLayers, "num_layers");
        Positive(RopeMaxSeqLen, "rope_max_seq_len");
        if (PatchSize.Length != 3 || PatchSize.Any(p => p <= 0))
            throw new ModelLoadException($"{source}: patch_size [{string.Join(", ", PatchSize)}] must be 3 positive integers");
        // RoPE splits head_dim into three axes of interleaved pairs: 2·(2·⌊hd/6⌋) for rows and columns, the rest for frames.
        if (AttentionHeadDim % 2 != 0 || AttentionHeadDim < 6)
            throw new ModelLoadException($"{source}: attention_head_dim = {AttentionHeadDim} must be even and at least 6 for the 3-axis rotary embedding");
        if (FreqDim % 2 != 0)
            throw new ModelLoadException($"{source}: freq_dim = {FreqDim} must be even (cos and sin halves)");
        if (!(Eps > 0)) throw new ModelLoadException($"{source}: eps = {Eps} must be positive");
    }
}
