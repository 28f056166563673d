using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// diffusers <c>WanDecoder3d</c>: conv_in → mid block → up_blocks (num_res_blocks+1 residual blocks each, then
/// an upsampler except after the last) → norm_out, SiLU → conv_out. Each upsampler halves the channels, so
/// every stage after the first starts from half the previous stage's width.
/// </summary>
internal sealed class Decoder : IChunkLayer
{
    private readonly CausalConv3d _convIn;
    private readonly MidBlock _mid;
    private readonly List<IChunkLayer> _upBlocks = new();
    private readonly RmsNorm _normOut;
    private readonly CausalConv3d _convOut;

    public Decoder(WeightSet weights, IBackend backend, WanVaeConfig config)
    {
        int b = config.DecoderBaseDim;
        int[] mult = [config.DimMult[^1], .. config.DimMult.Reverse()];
        int[] dims = mult.Select(m => b * m).ToArray();
        bool[] temporalUp = config.TemperalDownsample.Reverse().ToArray();

        _convIn = CausalConv3d.Cube(weights, "decoder.conv_in", backend, config.ZDim, dims[0]);
        _mid = new MidBlock(weights, "decoder.mid_block", backend, dims[0]);
        int stages = config.DimMult.Length;
        for (int i = 0; i < stages; i++)
        {
            int inDim = i == 0 ? dims[0] : dims[i] / 2, outDim = dims[i + 1];
            string block = $"decoder.up_blocks.{i}";
            for (int r = 0; r <= config.NumResBlocks; r++, inDim = outDim)
                _upBlocks.Add(new ResidualBlock(weights, $"{block}.resnets.{r}", backend, inDim, outDim));
            if (i != stages - 1)
                _upBlocks.Add(new Upsample(weights, $"{block}.upsamplers.0", backend, outDim, temporalUp[i]));
        }
        _normOut = new RmsNorm(weights, "decoder.norm_out.gamma", backend, dims[^1]);
        _convOut = CausalConv3d.Cube(weights, "decoder.conv_out", backend, dims[^1], config.OutChannels);
    }

    public Tensor Forward(Tensor x)
    {
        var h = _convIn.Forward(x);
        h = Encoder.Step(_mid, h);
        foreach (var layer in _upBlocks) h = Encoder.Step(layer, h);
        using (h)
        {
            _normOut.ApplyInPlace(h, silu: true);
            return _convOut.Forward(h);
        }
    }

    public void Reset()
    {
        _convIn.Reset();
        _mid.Reset();
        foreach (var layer in _upBlocks) layer.Reset();
        _convOut.Reset();
    }
}
