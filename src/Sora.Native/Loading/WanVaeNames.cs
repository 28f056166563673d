namespace Sora.Native.Loading;

/// <summary>
/// The Wan2.1 repository's VAE names (wan/modules/vae.py: wan_2.1_vae.safetensors and ComfyUI's copies) →
/// diffusers' AutoencoderKLWan, after diffusers' convert_wan_to_diffusers.py. Only names differ; every tensor
/// (gammas included: [C, 1, 1, 1] and [C, 1, 1] in both) has the same shape. The encoder's flat downsamples list
/// keeps its indices; the decoder's flat upsamples list is num_res_blocks + 1 residual blocks per stage, then the
/// stage's upsampler (none after the last), which diffusers nests as up_blocks.i.resnets.j / upsamplers.0.
/// </summary>
public static class WanVaeNames
{
    /// <summary>Wrappers around every key in some files (whole-pipeline checkpoints).</summary>
    public static IReadOnlyList<string> Prefixes { get; } = ["first_stage_model.", "vae."];

    /// <summary>The table for a decoder of <paramref name="stages"/> stages of <paramref name="numResBlocks"/> + 1 residual blocks.</summary>
    public static NameTable Table(int stages, int numResBlocks)
    {
        var modules = new List<(string, string)>
        {
            ("conv1", "quant_conv"),
            ("conv2", "post_quant_conv"),
            ("encoder.conv1", "encoder.conv_in"),
            ("encoder.head.0", "encoder.norm_out"),
            ("encoder.head.2", "encoder.conv_out"),
            ("decoder.conv1", "decoder.conv_in"),
            ("decoder.head.0", "decoder.norm_out"),
            ("decoder.head.2", "decoder.conv_out"),
        };
        foreach (string half in new[] { "encoder", "decoder" })
        {
            modules.AddRange(Residual($"{half}.middle.0", $"{half}.mid_block.resnets.0"));
            modules.Add(($"{half}.middle.1", $"{half}.mid_block.attentions.0"));
            modules.AddRange(Residual($"{half}.middle.2", $"{half}.mid_block.resnets.1"));
        }
        modules.AddRange(Residual("encoder.downsamples.#", "encoder.down_blocks.#"));
        modules.Add(("encoder.downsamples.#.resample", "encoder.down_blocks.#.resample"));
        modules.Add(("encoder.downsamples.#.time_conv", "encoder.down_blocks.#.time_conv"));
        for (int stage = 0, flat = 0; stage < stages; stage++)
        {
            for (int j = 0; j <= numResBlocks; j++, flat++)
                modules.AddRange(Residual($"decoder.upsamples.{flat}", $"decoder.up_blocks.{stage}.resnets.{j}"));
            if (stage == stages - 1) break;
            modules.Add(($"decoder.upsamples.{flat}.resample", $"decoder.up_blocks.{stage}.upsamplers.0.resample"));
            modules.Add(($"decoder.upsamples.{flat}.time_conv", $"decoder.up_blocks.{stage}.upsamplers.0.time_conv"));
            flat++;
        }
        return new NameTable(modules, Prefixes);
    }

    /// <summary>A residual block: residual = [RMS_norm, SiLU, conv, RMS_norm, SiLU, dropout, conv], plus its 1×1×1 shortcut.</summary>
    private static IEnumerable<(string, string)> Residual(string stored, string model) =>
    [
        ($"{stored}.residual.0", $"{model}.norm1"),
        ($"{stored}.residual.2", $"{model}.conv1"),
        ($"{stored}.residual.3", $"{model}.norm2"),
        ($"{stored}.residual.6", $"{model}.conv2"),
        ($"{stored}.shortcut", $"{model}.conv_shortcut"),
    ];
}
