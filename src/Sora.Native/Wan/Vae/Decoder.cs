using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// diffusers <c>WanDecoder3d</c>: conv_in → mid block → up stages → norm_out, SiLU → conv_out. Wan2.1's stages
/// are num_res_blocks+1 residual blocks and an upsampler (except after the last) that halves the channels, so
/// every stage after the first starts from half the previous stage's width; Wan2.2's (is_residual) are one
/// <see cref="ResidualUpBlock"/> per stage, whose upsampler keeps the width. Runs one frame at a time
/// (<see cref="FrameStream"/>), of one clip or of several of one size side by side: a temporal upsampler's two output
/// frames go through the rest one after the other.
/// </summary>
internal sealed class Decoder
{
    private readonly FrameStream _stream;
    private readonly RmsNorm _normOut;
    private readonly CausalConv3d _convOut;

    public Decoder(WeightSet weights, IBackend backend, WanVaeConfig config)
    {
        int b = config.DecoderBaseDim;
        int[] mult = [config.DimMult[^1], .. config.DimMult.Reverse()];
        int[] dims = mult.Select(m => b * m).ToArray();
        bool[] temporalUp = config.TemperalDownsample.Reverse().ToArray();

        var layers = new List<IChunkLayer>
        {
            CausalConv3d.Cube(weights, "decoder.conv_in", backend, config.ZDim, dims[0]),
            new MidBlock(weights, "decoder.mid_block", backend, dims[0]),
        };
        int stages = config.DimMult.Length;
        for (int i = 0; i < stages; i++)
        {
            string block = $"decoder.up_blocks.{i}";
            bool up = i != stages - 1;
            if (config.IsResidual)
            {
                layers.Add(new ResidualUpBlock(weights, block, backend, dims[i], dims[i + 1], config.NumResBlocks, up, temporal: up && temporalUp[i]));
                continue;
            }
            int inDim = i == 0 ? dims[0] : dims[i] / 2, outDim = dims[i + 1];
            for (int r = 0; r <= config.NumResBlocks; r++, inDim = outDim)
                layers.Add(new ResidualBlock(weights, $"{block}.resnets.{r}", backend, inDim, outDim));
            if (up)
                layers.Add(new Upsample(weights, $"{block}.upsamplers.0", backend, outDim, outDim / 2, temporalUp[i]));
        }
        _stream = new FrameStream(backend, layers);
        _normOut = new RmsNorm(weights, "decoder.norm_out.gamma", backend, dims[^1]);
        _convOut = CausalConv3d.Cube(weights, "decoder.conv_out", backend, dims[^1], config.OutChannels);
    }

    /// <summary>
    /// Decodes the next latent frame z [z_dim, clips, h, w] (owned: freed here); <paramref name="emit"/> receives the
    /// output frames in order, each [out_channels, clips, H, W], valid only during the call (it may modify it).
    /// </summary>
    public void Forward(Tensor z, Action<Tensor> emit)
    {
        _stream.Run(z, x =>
        {
            _normOut.ApplyInPlace(x, silu: true);
            using var y = _convOut.Forward(x);
            emit(y);
        });
    }

    /// <summary>Forgets the previous decode; the next latent frames hold <paramref name="clips"/> clips side by side.</summary>
    public void Reset(int clips)
    {
        _stream.Reset(clips);
        _convOut.Reset(clips);
    }
}
