using System.Globalization;
using Sora.Native.Wan;
using Sora.Native.Wan.Vae;

namespace Sora.Native.Pipeline;

/// <summary>
/// The working memory of one request beyond the loaded weights, estimated from its sizes before any work, so that a
/// request the device cannot hold is refused at once with the figures instead of failing hours in (or overflowing).
/// The factors are upper-side approximations of what the pools hold at the peak of each phase (the VAE's was
/// calibrated on the measured decoders: Wan2.1 4.5 GB at 480×832, Wan2.2 8.3 GB at 704×1280, README's memory table).
/// </summary>
public sealed record MemoryEstimate(double LatentBytes, double TransformerBytes, double VaeBytes, double OutputBytes, double OutputValues)
{
    /// <summary>Live copies of the latents: sample, blended input, B predictions, guided velocity, scheduler history.</summary>
    private const int LatentCopies = 8;
    /// <summary>[rows, dim] activations alive inside a block: residual, normed, q, k, v, attention output, projections.</summary>
    private const int TokenActivations = 8;
    /// <summary>Bytes per (channel · pixel) of a VAE stage at its widest, per frame, with caches and convolution scratch.</summary>
    private const int VaeBytesPerChannelPixel = 145;
    /// <summary>Decoded frames exist three times at the end: device tensor, host copy, interleaved RGB.</summary>
    private const int OutputCopies = 3;

    public double TotalBytes => LatentBytes + TransformerBytes + Math.Max(VaeBytes, 0) + OutputBytes;

    /// <summary>The estimate for a clip of <paramref name="frames"/> × <paramref name="height"/> × <paramref name="width"/>
    /// with latents <paramref name="latentShape"/> [C, T, h, w] and <paramref name="prompts"/> prompts per pass.</summary>
    public static MemoryEstimate For(WanTransformerConfig transformer, WanVaeConfig vae, int[] latentShape,
        int frames, int height, int width, int prompts, bool decode, bool encode)
    {
        double latentValues = (double)latentShape[0] * latentShape[1] * latentShape[2] * latentShape[3];
        int[] p = transformer.PatchSize;
        double tokens = latentValues / latentShape[0] / (p[0] * p[1] * p[2]);
        double rows = tokens * prompts;
        double transformerBytes = 4 * (rows * transformer.Dim * TokenActivations
            + Math.Min(rows, 8192) * transformer.FfnDim
            + rows * 6 * transformer.Dim);

        // The widest full-resolution stage of each half (before the 2×2 unpatchify of a patchified VAE).
        double stagePixels = (double)height * width / (vae.PatchSize * vae.PatchSize);
        double decodeBytes = decode ? VaeBytesPerChannelPixel * stagePixels * vae.DecoderBaseDim * vae.DimMult[0] : 0;
        double encodeBytes = encode ? VaeBytesPerChannelPixel * stagePixels * vae.BaseDim * vae.DimMult[0] : 0;

        double outputValues = decode ? 3.0 * frames * height * width : 0;
        return new MemoryEstimate(4 * latentValues * LatentCopies, transformerBytes, Math.Max(decodeBytes, encodeBytes),
            4 * outputValues * OutputCopies, outputValues);
    }

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> for <paramref name="option"/> when the estimate exceeds
    /// <paramref name="availableBytes"/> (0: unknown, not checked) or the decoded clip cannot fit one .NET array.
    /// </summary>
    public void EnsureFits(long availableBytes, string deviceName, string request, string option)
    {
        if (OutputValues > Array.MaxLength)
            throw new ArgumentException($"{request}: the decoded clip would hold {OutputValues:0} values, more than one array can "
                + $"({Array.MaxLength}); ask for fewer frames or a smaller size", option);
        if (availableBytes > 0 && TotalBytes > availableBytes)
            throw new ArgumentException($"{request} needs about {GiB(TotalBytes)} of working memory (latents {GiB(LatentBytes)}, "
                + $"transformer {GiB(TransformerBytes)}, VAE {GiB(VaeBytes)}, decoded frames {GiB(OutputBytes)}) but {deviceName} "
                + $"has {GiB(availableBytes)}; ask for fewer frames or a smaller size", option);
    }

    private static string GiB(double bytes) => (bytes / (1L << 30)).ToString("0.0", CultureInfo.InvariantCulture) + " GiB";
}
