using System.Text.Json;
using Sora.Native.Loading;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// The hyper-parameters of diffusers' <c>AutoencoderKLWan</c> (vae/config.json), both generations: Wan2.1
/// (plain down/up stages, 3 pixel channels in and out) and Wan2.2 (<c>is_residual</c> stages with parameter-free
/// shortcuts, <c>patch_size</c> 2: the encoder sees p×p pixel patches as p²·3 = 12 channels). Keys absent from
/// the file take diffusers' defaults (the Wan2.1 values); unknown keys are ignored.
/// </summary>
public sealed record WanVaeConfig
{
    public int BaseDim { get; init; } = 96;
    /// <summary>Channel base of the decoder; null in the file means <see cref="BaseDim"/>.</summary>
    public int DecoderBaseDim { get; init; } = 96;
    public int ZDim { get; init; } = 16;
    public int[] DimMult { get; init; } = [1, 2, 4, 4];
    public int NumResBlocks { get; init; } = 2;
    /// <summary>Per encoder stage transition: whether it also halves time (the decoder uses the reverse).</summary>
    public bool[] TemperalDownsample { get; init; } = [false, true, true];
    /// <summary>
    /// Channels the encoder's conv_in takes: the pixel channels times patch_size² (12 for Wan2.2, as
    /// Wan2.2-TI2V-5B-Diffusers' config and weights have it).
    /// </summary>
    public int InChannels { get; init; } = 3;
    /// <summary>Channels the decoder's conv_out gives, before unpatchify.</summary>
    public int OutChannels { get; init; } = 3;
    /// <summary>Wan2.2: residual down/up stages with the AvgDown3D / DupUp3D shortcuts, upsamplers that keep channels.</summary>
    public bool IsResidual { get; init; }
    /// <summary>Side of the square pixel patch folded into channels around the network; 1 (null in the file) for none.</summary>
    public int PatchSize { get; init; } = 1;
    public float[] LatentsMean { get; init; } =
        [-0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f, -0.1517f, 1.5508f,
         0.4134f, -0.0715f, 0.5517f, -0.3632f, -0.1922f, -0.9497f, 0.2503f, -0.2921f];
    public float[] LatentsStd { get; init; } =
        [2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
         3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f];

    /// <summary>Pixels per latent pixel along H and W: the patch side times one halving per stage transition.</summary>
    public int SpatialFactor => PatchSize << (DimMult.Length - 1);

    /// <summary>Frames per latent frame after the first: one halving per temporal transition.</summary>
    public int TemporalFactor => 1 << TemperalDownsample.Count(d => d);

    /// <summary>Channels of the video <see cref="WanVae.Encode"/> takes: in_channels / patch_size² (3).</summary>
    public int PixelInChannels => InChannels / (PatchSize * PatchSize);

    /// <summary>Channels of the video <see cref="WanVae.Decode(Sora.Runtime.Tensor)"/> returns: out_channels / patch_size² (3).</summary>
    public int PixelOutChannels => OutChannels / (PatchSize * PatchSize);

    /// <summary>Reads vae/config.json; a file that is not a Wan VAE gets an error naming the file and key.</summary>
    public static WanVaeConfig Load(string path)
    {
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: VAE config not found");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new ModelLoadException($"{path}: not valid JSON: {e.Message}", e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new ModelLoadException($"{path}: expected a JSON object");
            var reader = new Reader(path, root);

            string? className = reader.String("_class_name");
            if (className is not null && className != "AutoencoderKLWan")
                throw new ModelLoadException($"{path}: _class_name is '{className}', expected 'AutoencoderKLWan'");
            // diffusers' decoder ignores attn_scales while the original Wan decoder honours it: refuse rather than guess.
            if (root.TryGetProperty("attn_scales", out var attn) && attn.ValueKind == JsonValueKind.Array && attn.GetArrayLength() > 0)
                throw new NotSupportedException($"{path}: attn_scales = {attn.GetRawText()} is not supported; the Wan2.1 VAE has attn_scales []");

            var defaults = new WanVaeConfig();
            int baseDim = reader.Int("base_dim") ?? defaults.BaseDim;
            var config = new WanVaeConfig
            {
                BaseDim = baseDim,
                DecoderBaseDim = reader.Int("decoder_base_dim") ?? baseDim,
                ZDim = reader.Int("z_dim") ?? defaults.ZDim,
                DimMult = reader.IntArray("dim_mult") ?? defaults.DimMult,
                NumResBlocks = reader.Int("num_res_blocks") ?? defaults.NumResBlocks,
                TemperalDownsample = reader.BoolArray("temperal_downsample") ?? defaults.TemperalDownsample,
                InChannels = reader.Int("in_channels") ?? defaults.InChannels,
                OutChannels = reader.Int("out_channels") ?? defaults.OutChannels,
                LatentsMean = reader.FloatArray("latents_mean") ?? defaults.LatentsMean,
                LatentsStd = reader.FloatArray("latents_std") ?? defaults.LatentsStd,
                IsResidual = reader.Bool("is_residual") ?? false,
                PatchSize = reader.Int("patch_size") ?? 1,
            };
            config.Validate(path);
            // The scale factors are diffusers' bookkeeping of what the architecture does: they must agree with it.
            if (reader.Int("scale_factor_spatial") is { } spatial && spatial != config.SpatialFactor)
                throw new ModelLoadException($"{path}: scale_factor_spatial = {spatial}, but patch_size {config.PatchSize} and {config.DimMult.Length - 1} downsampling stages (dim_mult) give {config.SpatialFactor}");
            if (reader.Int("scale_factor_temporal") is { } temporal && temporal != config.TemporalFactor)
                throw new ModelLoadException($"{path}: scale_factor_temporal = {temporal}, but temperal_downsample [{string.Join(", ", config.TemperalDownsample)}] gives {config.TemporalFactor}");
            return config;
        }
    }

    /// <summary>Throws naming the key when the values cannot describe a Wan VAE.</summary>
    public void Validate(string source)
    {
        void Positive(int value, string key)
        {
            if (value <= 0) throw new ModelLoadException($"{source}: {key} = {value} must be positive");
        }
        Positive(BaseDim, "base_dim");
        Positive(DecoderBaseDim, "decoder_base_dim");
        Positive(ZDim, "z_dim");
        Positive(NumResBlocks, "num_res_blocks");
        Positive(InChannels, "in_channels");
        Positive(OutChannels, "out_channels");
        if (DimMult.Length < 2 || DimMult.Any(m => m <= 0))
            throw new ModelLoadException($"{source}: dim_mult [{string.Join(", ", DimMult)}] needs at least 2 positive entries");
        if (TemperalDownsample.Length != DimMult.Length - 1)
            throw new ModelLoadException($"{source}: temperal_downsample has {TemperalDownsample.Length} entries, expected {DimMult.Length - 1} (one per stage transition of dim_mult)");
        Positive(PatchSize, "patch_size");
        long patch = (long)PatchSize * PatchSize;
        if (InChannels % patch != 0)
            throw new ModelLoadException($"{source}: in_channels = {InChannels} is not a multiple of patch_size² = {patch} (the encoder takes patch_size² channels per pixel channel)");
        if (OutChannels % patch != 0)
            throw new ModelLoadException($"{source}: out_channels = {OutChannels} is not a multiple of patch_size² = {patch} (the decoder gives patch_size² channels per pixel channel)");
        if (IsResidual) ValidateShortcuts(source);
        else
            // The Wan2.1 decoder halves channels in each upsampler: odd stage widths would not halve exactly.
            foreach (int m in DimMult)
                if (DecoderBaseDim * m % 2 != 0)
                    throw new ModelLoadException($"{source}: decoder_base_dim {DecoderBaseDim} × dim_mult {m} is odd; the decoder's upsamplers halve channels");
        if (LatentsMean.Length != ZDim)
            throw new ModelLoadException($"{source}: latents_mean has {LatentsMean.Length} entries, expected z_dim = {ZDim}");
        if (LatentsStd.Length != ZDim)
            throw new ModelLoadException($"{source}: latents_std has {LatentsStd.Length} entries, expected z_dim = {ZDim}");
    }

    /// <summary>
    /// The residual stages' shortcuts regroup channels: AvgDown3D averages in·factor values into each of out
    /// channels, DupUp3D spreads in channels over out·factor values (factor = 2 per halved or doubled axis).
    /// </summary>
    private void ValidateShortcuts(string source)
    {
        int stages = DimMult.Length;
        for (int i = 0; i < stages; i++)
        {
            bool resample = i != stages - 1;
            int factor = (resample ? 4 : 1) * (resample && TemperalDownsample[i] ? 2 : 1);
            int inDim = BaseDim * (i == 0 ? 1 : DimMult[i - 1]), outDim = BaseDim * DimMult[i];
            if (inDim * factor % outDim != 0)
                throw new ModelLoadException($"{source}: encoder stage {i} goes from {inDim} to {outDim} channels (base_dim × dim_mult); its average shortcut needs {inDim}·{factor} to be a multiple of {outDim}");
        }
        int[] mult = [DimMult[^1], .. DimMult.Reverse()];
        bool[] temporalUp = TemperalDownsample.Reverse().ToArray();
        for (int i = 0; i < stages - 1; i++)
        {
            int factor = 4 * (temporalUp[i] ? 2 : 1);
            int inDim = DecoderBaseDim * mult[i], outDim = DecoderBaseDim * mult[i + 1];
            if (outDim * factor % inDim != 0)
                throw new ModelLoadException($"{source}: decoder stage {i} goes from {inDim} to {outDim} channels (decoder_base_dim × dim_mult); its duplicating shortcut needs {outDim}·{factor} to be a multiple of {inDim}");
        }
    }

    /// <summary>Typed access to optional keys; null (or absent) reads as null, a wrong type is an error naming the key.</summary>
    private readonly struct Reader(string path, JsonElement root)
    {
        private JsonElement? Get(string key)
            => root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

        private ModelLoadException Bad(string key, JsonElement v, string expected)
            => new($"{path}: {key} = {v.GetRawText()} is not {expected}");

        public string? String(string key)
        {
            if (Get(key) is not { } v) return null;
            return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Bad(key, v, "a string");
        }

        public bool? Bool(string key)
        {
            if (Get(key) is not { } v) return null;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Bad(key, v, "a boolean"),
            };
        }

        public int? Int(string key)
        {
            if (Get(key) is not { } v) return null;
            return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw Bad(key, v, "an integer");
        }

        private T[]? Array<T>(string key, string expected, Func<JsonElement, T?> item) where T : struct
        {
            if (Get(key) is not { } v) return null;
            if (v.ValueKind != JsonValueKind.Array) throw Bad(key, v, expected);
            var result = new T[v.GetArrayLength()];
            int n = 0;
            foreach (var e in v.EnumerateArray())
                result[n++] = item(e) ?? throw Bad(key, v, expected);
            return result;
        }

        public int[]? IntArray(string key) => Array<int>(key, "an array of integers",
            e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i) ? i : null);

        public float[]? FloatArray(string key) => Array<float>(key, "an array of numbers",
            e => e.ValueKind == JsonValueKind.Number ? (float?)e.GetDouble() : null);

        public bool[]? BoolArray(string key) => Array<bool>(key, "an array of booleans",
            e => e.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => (bool?)null });
    }
}
