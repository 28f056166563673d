using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// diffusers <c>WanDecoder3d</c>: conv_in → mid block → up_blocks (num_res_blocks+1 residual blocks each, then
/// an upsampler except after the last) → norm_out, SiLU → conv_out. Each upsampler halves the channels, so
/// every stage after the first starts from half the previous stage's width.
/// </summary>
/// <remarks>
/// Runs depth first, one frame at a time: when a temporal upsampler turns a frame into two, each is taken
/// through the rest of the decoder before the next. Every layer is causal with its own cache (or works per
/// frame), so this equals running each chunk whole, while the widest stages hold one frame instead of four.
/// </remarks>
internal sealed class Decoder
{
    private readonly IBackend _backend;
    private readonly List<IChunkLayer> _layers = new();
    private readonly RmsNorm _normOut;
    private readonly CausalConv3d _convOut;

    public Decoder(WeightSet weights, IBackend backend, WanVaeConfig config)
    {
        _backend = backend;
        int b = config.DecoderBaseDim;
        int[] mult = [config.DimMult[^1], .. config.DimMult.Reverse()];
        int[] dims = mult.Select(m => b * m).ToArray();
        bool[] temporalUp = config.TemperalDownsample.Reverse().ToArray();

        _layers.Add(CausalConv3d.Cube(weights, "decoder.conv_in", backend, config.ZDim, dims[0]));
        _layers.Add(new MidBlock(weights, "decoder.mid_block", backend, dims[0]));
        int stages = config.DimMult.Length;
        for (int i = 0; i < stages; i++)
        {
            int inDim = i == 0 ? dims[0] : dims[i] / 2, outDim = dims[i + 1];
            string block = $"decoder.up_blocks.{i}";
            for (int r = 0; r <= config.NumResBlocks; r++, inDim = outDim)
                _layers.Add(new ResidualBlock(weights, $"{block}.resnets.{r}", backend, inDim, outDim));
            if (i != stages - 1)
                _layers.Add(new Upsample(weights, $"{block}.upsamplers.0", backend, outDim, temporalUp[i]));
        }
        _normOut = new RmsNorm(weights, "decoder.norm_out.gamma", backend, dims[^1]);
        _convOut = CausalConv3d.Cube(weights, "decoder.conv_out", backend, dims[^1], config.OutChannels);
    }

    /// <summary>
    /// Decodes the next latent frame z [z_dim, 1, h, w]; <paramref name="emit"/> receives the output frames in
    /// order, each [out_channels, 1, H, W], valid only during the call (it may modify it).
    /// </summary>
    public void Forward(Tensor z, Action<Tensor> emit)
    {
        if (z.Dim(1) != 1) throw new ArgumentException($"the decoder takes one latent frame at a time, got {z.ShapeString}", nameof(z));
        var x = _backend.Allocate(DType.F32, z.Shape);
        _backend.Copy(z, x);
        Stream(0, x, emit);
    }

    /// <summary>Takes <paramref name="x"/> (owned, freed here) through layers from <paramref name="layer"/> on.</summary>
    private void Stream(int layer, Tensor x, Action<Tensor> emit)
    {
        if (layer == _layers.Count)
        {
            using (x)
            {
                _normOut.ApplyInPlace(x, silu: true);
                using var y = _convOut.Forward(x);
                emit(y);
            }
            return;
        }
        Tensor output;
        using (x) output = _layers[layer].Forward(x);
        if (output.Dim(1) == 1)
        {
            Stream(layer + 1, output, emit);
            return;
        }
        using (output)
            for (int f = 0; f < output.Dim(1); f++) Stream(layer + 1, Frame(output, f), emit);
    }

    /// <summary>A new contiguous copy of frame f of x [C, T, H, W].</summary>
    private Tensor Frame(Tensor x, int f)
    {
        var frame = _backend.Allocate(DType.F32, x.Dim(0), 1, x.Dim(2), x.Dim(3));
        _backend.Copy(x.Slice(1, f, 1), frame);
        return frame;
    }

    public void Reset()
    {
        foreach (var layer in _layers) layer.Reset();
        _convOut.Reset();
    }
}
