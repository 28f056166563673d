using Sora.Native.Text;
using Sora.Native.Wan;
using Sora.Native.Wan.Vae;
using Sora.Runtime;

namespace Sora.Native.Loading;

/// <summary>
/// A component's hyper-parameters read from its tensors' shapes, for single files that carry no config. Every
/// value is one tensor dimension (the doc of each method says which); what shapes cannot tell takes the value
/// every released Wan model has (heads = dim/128, eps 1e-6) or comes from an explicit config, and a config value
/// that contradicts a shape is an error naming the config key, the file and the tensor.
/// </summary>
public static class ShapeInference
{
    /// <summary>Head width of every released Wan transformer (1.3B: 12 × 128, 14B: 40 × 128, 5B: 24 × 128).</summary>
    public const int WanHeadDim = 128;

    /// <summary>
    /// The transformer of a source in diffusers names: patch_embedding.weight [dim, in, pt, ph, pw]; num_layers =
    /// the blocks.N present; ffn_dim = blocks.0.ffn.net.0.proj.weight[0]; text_dim, freq_dim = the in-features of
    /// the text and time embedders' linear_1; out_channels = proj_out.weight[0] / (pt·ph·pw); cross_attn_norm =
    /// whether blocks.0.norm2 has weights. <paramref name="configPath"/> (the original Wan config.json keys, or a
    /// diffusers transformer config) gives num_heads and eps and must agree with the rest.
    /// </summary>
    public static WanTransformerConfig Transformer(ITensorSource source, string? configPath)
    {
        if (source.Names.FirstOrDefault(n => n.Contains("img_emb", StringComparison.Ordinal) || n.Contains("k_img", StringComparison.Ordinal)
                || n.Contains("image_embedder", StringComparison.Ordinal) || n.Contains("add_k_proj", StringComparison.Ordinal)) is { } i2v)
            throw new NotSupportedException($"{source.FileOf(i2v)}: tensor '{TensorSources.StoredName(source, i2v)}' belongs to an image-to-video (I2V) transformer; only text-to-video is supported");
        var shapes = new Shapes(source, "Wan transformer");
        int[] pe = shapes.Of("patch_embedding.weight", 5);
        int dim = pe[0];
        int[] patch = [pe[2], pe[3], pe[4]];
        int layers = shapes.CountIndexed("blocks.");
        int ffn = shapes.Of("blocks.0.ffn.net.0.proj.weight", 2)[0];
        int textDim = shapes.Of("condition_embedder.text_embedder.linear_1.weight", 2)[1];
        int freqDim = shapes.Of("condition_embedder.time_embedder.linear_1.weight", 2)[1];
        int outRows = shapes.Of("proj_out.weight", 2)[0], volume = patch[0] * patch[1] * patch[2];
        if (outRows % volume != 0)
            throw shapes.Error("proj_out.weight", $"has {outRows} rows, not a multiple of the patch volume {volume} (patch_embedding.weight)");
        bool crossNorm = source.Contains("blocks.0.norm2.weight");

        int? heads = dim % WanHeadDim == 0 ? dim / WanHeadDim : null;
        float eps = 1e-6f;
        if (configPath is not null)
        {
            var json = ConfigJson.Load(configPath, "transformer config");
            bool diffusers = !json.IsNull("num_attention_heads");
            void Agree(string key, int inferred, string tensor)
            {
                if (json.IsNull(key)) return;
                int given = json.RequiredInt(key);
                if (given != inferred)
                    throw new ModelLoadException($"{configPath}: {key} = {given}, but {shapes.Describe(tensor)} gives {inferred}");
            }
            if (diffusers)
            {
                var c = WanTransformerConfig.Load(configPath);
                heads = c.NumAttentionHeads;
                eps = c.Eps;
                if (c.Dim != dim)
                    throw new ModelLoadException($"{configPath}: num_attention_heads × attention_head_dim = {c.Dim}, but {shapes.Describe("patch_embedding.weight")} gives dim {dim}");
                Agree("in_channels", pe[1], "patch_embedding.weight");
                Agree("out_channels", outRows / volume, "proj_out.weight");
                Agree("ffn_dim", ffn, "blocks.0.ffn.net.0.proj.weight");
                Agree("text_dim", textDim, "condition_embedder.text_embedder.linear_1.weight");
                Agree("freq_dim", freqDim, "condition_embedder.time_embedder.linear_1.weight");
                Agree("num_layers", layers, "blocks.0.scale_shift_table");
            }
            else
            {
                string modelType = json.String("model_type") ?? "t2v";
                if (modelType != "t2v") throw json.Error("model_type", $"'{modelType}' is not supported (only t2v, text to video)");
                if (!json.IsNull("num_heads")) heads = json.RequiredInt("num_heads");
                eps = (float)json.Double("eps", 1e-6);
                Agree("dim", dim, "patch_embedding.weight");
                Agree("in_dim", pe[1], "patch_embedding.weight");
                Agree("out_dim", outRows / volume, "proj_out.weight");
                Agree("ffn_dim", ffn, "blocks.0.ffn.net.0.proj.weight");
                Agree("text_dim", textDim, "condition_embedder.text_embedder.linear_1.weight");
                Agree("freq_dim", freqDim, "condition_embedder.time_embedder.linear_1.weight");
                Agree("num_layers", layers, "blocks.0.scale_shift_table");
                if (json.IntArray("patch_size") is { } p && !p.SequenceEqual(patch))
                    throw new ModelLoadException($"{configPath}: patch_size = [{string.Join(", ", p)}], but {shapes.Describe("patch_embedding.weight")} gives [{string.Join(", ", patch)}]");
                if (!json.Bool("qk_norm", true)) throw json.Error("qk_norm", "false is not supported (Wan2.1 normalises q and k)");
                if (json.Bool("cross_attn_norm", crossNorm) != crossNorm)
                    throw new ModelLoadException($"{configPath}: cross_attn_norm = {!crossNorm}, but {source.Source} {(crossNorm ? "has" : "has no")} cross-attention norm weights (blocks.0.norm3.weight)");
            }
        }
        if (heads is not { } h)
            throw new ModelLoadException($"{source.Source}: dim {dim} is not a multiple of {WanHeadDim}, so the number of attention heads cannot be inferred: give a config (--transformer-config) with num_heads");
        if (h <= 0 || dim % h != 0)
            throw new ModelLoadException($"{configPath ?? source.Source}: num_heads = {h} does not divide dim {dim} ({shapes.Describe("patch_embedding.weight")})");

        var config = new WanTransformerConfig
        {
            NumAttentionHeads = h,
            AttentionHeadDim = dim / h,
            InChannels = pe[1],
            OutChannels = outRows / volume,
            TextDim = textDim,
            FreqDim = freqDim,
            FfnDim = ffn,
            NumLayers = layers,
            PatchSize = patch,
            Eps = eps,
            CrossAttnNorm = crossNorm,
        };
        config.Validate(configPath ?? source.Source);
        return config;
    }

    /// <summary>
    /// The Wan2.1 VAE of an original-layout source (before renaming): z_dim = conv2.weight[0]; base_dim and the
    /// pixel channels from encoder.conv1.weight [base, in, 3, 3, 3]; out_channels = decoder.head.2.weight[0]; the
    /// encoder's flat downsamples list gives num_res_blocks (residual blocks before the first resample), the stages
    /// (resamples + 1), dim_mult (each stage's residual.2 out-channels / base_dim) and temperal_downsample (a
    /// resample with a time_conv). Latent statistics: Wan2.1's published ones for z_dim 16; a VAE of any other
    /// z_dim has none known, so the identity (mean 0, std 1) stands in.
    /// </summary>
    public static WanVaeConfig Vae(ITensorSource source, string prefix)
    {
        var shapes = new Shapes(source, "Wan2.1 VAE", prefix);
        int z = shapes.Of("conv2.weight", 5)[0];
        int[] conv1 = shapes.Of("encoder.conv1.weight", 5);
        int baseDim = conv1[0];
        int outChannels = shapes.Of("decoder.head.2.weight", 5)[0];

        var mult = new List<int>();
        var temporal = new List<bool>();
        int numResBlocks = -1, inStage = 0;
        for (int i = 0; ; i++)
        {
            string block = $"encoder.downsamples.{i}";
            if (source.Contains($"{prefix}{block}.residual.2.weight"))
            {
                int width = shapes.Of($"{block}.residual.2.weight", 5)[0];
                if (inStage == 0)
                {
                    if (width % baseDim != 0) throw shapes.Error($"{block}.residual.2.weight", $"has {width} output channels, not a multiple of base_dim {baseDim} (encoder.conv1.weight)");
                    mult.Add(width / baseDim);
                }
                inStage++;
            }
            else if (source.Contains($"{prefix}{block}.resample.1.weight"))
            {
                if (numResBlocks < 0) numResBlocks = inStage;
                if (inStage != numResBlocks || inStage == 0)
                    throw shapes.Error($"{block}.resample.1.weight", $"follows {inStage} residual blocks where the first stage had {numResBlocks}: not a Wan2.1 VAE layout");
                temporal.Add(source.Contains($"{prefix}{block}.time_conv.weight"));
                inStage = 0;
            }
            else break;
        }
        if (numResBlocks < 0 || inStage != numResBlocks)
            throw new ModelLoadException($"{source.Source}: encoder.downsamples has no Wan2.1 structure (stages of equal residual blocks separated by resamples): not a Wan2.1 VAE");

        var defaults = new WanVaeConfig();
        var config = new WanVaeConfig
        {
            BaseDim = baseDim,
            DecoderBaseDim = baseDim,
            ZDim = z,
            DimMult = mult.ToArray(),
            NumResBlocks = numResBlocks,
            TemperalDownsample = temporal.ToArray(),
            InChannels = conv1[1],
            OutChannels = outChannels,
            LatentsMean = z == defaults.ZDim ? defaults.LatentsMean : new float[z],
            LatentsStd = z == defaults.ZDim ? defaults.LatentsStd : Enumerable.Repeat(1f, z).ToArray(),
        };
        config.Validate(source.Source);
        return config;
    }

    /// <summary>
    /// The UMT5 encoder of a source in Hugging Face names: vocab_size, d_model = shared.weight (or
    /// encoder.embed_tokens.weight); num_layers = the encoder.block.N present; relative buckets and num_heads =
    /// block 0's relative_attention_bias [buckets, heads]; d_kv = q.weight[0] / heads; d_ff = wi_0.weight[0];
    /// max distance 128 and eps 1e-6 (umT5's, not in the shapes).
    /// </summary>
    public static Umt5Config Umt5(ITensorSource source)
    {
        var shapes = new Shapes(source, "UMT5 encoder");
        int[] embedding = shapes.Of(source.Contains("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight", 2);
        int layers = shapes.CountIndexed("encoder.block.");
        const string attention = "encoder.block.0.layer.0.SelfAttention";
        int[] bias = shapes.Of($"{attention}.relative_attention_bias.weight", 2);
        int heads = bias[1];
        int inner = shapes.Of($"{attention}.q.weight", 2)[0];
        if (inner % heads != 0) throw shapes.Error($"{attention}.q.weight", $"has {inner} rows, not a multiple of the {heads} heads of relative_attention_bias");
        int ff = shapes.Of("encoder.block.0.layer.1.DenseReluDense.wi_0.weight", 2)[0];
        return new Umt5Config(embedding[1], inner / heads, ff, heads, layers, embedding[0], bias[0], 128, 1e-6f);
    }

    /// <summary>Shape look-ups that name the file and the tensor (as the file calls it) when one is missing or of the wrong rank.</summary>
    private sealed class Shapes(ITensorSource source, string what, string prefix = "")
    {
        public int[] Of(string name, int rank)
        {
            string full = prefix + name;
            if (!source.Contains(full))
                throw new ModelLoadException($"{source.Source}: no tensor '{full}' to read the {what}'s shape from (is this a {what} file?)");
            var shape = source.Describe(full).Shape;
            if (shape.Length != rank) throw Error(name, $"has shape [{string.Join(", ", shape)}], expected {rank} dimensions");
            return shape;
        }

        /// <summary>1 + the largest N of the names "{head}N.…" (0 when none).</summary>
        public int CountIndexed(string head)
        {
            int count = 0;
            foreach (string n in source.Names)
            {
                if (!n.StartsWith(prefix + head, StringComparison.Ordinal)) continue;
                string rest = n[(prefix.Length + head.Length)..];
                int dot = rest.IndexOf('.');
                if (dot > 0 && int.TryParse(rest[..dot], System.Globalization.NumberStyles.None, null, out int i)) count = Math.Max(count, i + 1);
            }
            if (count == 0) throw new ModelLoadException($"{source.Source}: no '{head}N.' tensors: not a {what} file");
            return count;
        }

        public string Describe(string name)
        {
            string full = prefix + name;
            return $"{source.FileOf(full)}: tensor '{TensorSources.StoredName(source, full)}' [{string.Join(", ", source.Describe(full).Shape)}]";
        }

        public ModelLoadException Error(string name, string problem) => new($"{Describe(name)} {problem}");
    }
}
