using Sora.Native.Loading;
using Sora.Native.Wan;
using Sora.Native.Wan.Vae;

namespace Sora.Native.Pipeline;

/// <summary>
/// How a model's pixels map to latents and tokens, from its configs: frames per latent frame after the first, pixels
/// per latent pixel, the transformer's patch, and so the multiple that heights and widths must be.
/// Wan2.1: 4, 8, (1, 2, 2) → 16; Wan2.2 TI2V: 4, 16, (1, 2, 2) → 32.
/// </summary>
public sealed record ModelGeometry(int TemporalFactor, int SpatialFactor, int[] Patch, int LatentChannels)
{
    public int SizeMultiple => SpatialFactor * Math.Max(Patch[1], Patch[2]);

    public static ModelGeometry From(WanTransformerConfig transformer, WanVaeConfig vae)
        => new(vae.TemporalFactor, vae.SpatialFactor, transformer.PatchSize, transformer.InChannels);

    /// <summary>Reads only the config files of a model folder (no weights), for checks before loading.</summary>
    public static ModelGeometry Load(string modelDir)
    {
        var folder = ModelFolder.Open(modelDir);
        return From(WanTransformerConfig.Load(Path.Combine(folder.TransformerDir, "config.json")),
            WanVaeConfig.Load(Path.Combine(folder.VaeDir, "config.json")));
    }
}
