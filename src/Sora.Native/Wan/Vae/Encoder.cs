using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// diffusers <c>WanEncoder3d</c>: conv_in → down_blocks (a flat list: per stage num_res_blocks residual blocks,
/// then a downsampler between stages) → mid block → norm_out, SiLU → conv_out to 2·z channels (mean ‖ logvar).
/// </summary>
internal sealed class Encoder : IChunkLayer
{
    private readonly CausalConv3d _convIn;
    private readonly List<IChunkLayer> _downBlocks = new();
    private readonly MidBlock _mid;
    private readonly RmsNorm _normOut;
    private readonly CausalConv3d _convOut;

    public Encoder(WeightSet weights, IBackend backend, WanVaeConfig config)
    {
        int[] dims = [config.BaseDim, .. config.DimMult.Select(m => config.BaseDim * m)];
        _convIn = CausalConv3d.Cube(weights, "encoder.conv_in", backend, config.InChannels, dims[0]);
        int stages = config.DimMult.Length;
        for (int stage = 0; stage < stages; stage++)
        {
            int inDim = dims[stage], outDim = dims[stage + 1];
            for (int r = 0; r < config.NumResBlocks; r++, inDim = outDim)
                _downBlocks.Add(new ResidualBlock(weights, $"encoder.down_blocks.{_downBlocks.Count}", backend, inDim, outDim));
            if (stage != stages - 1)
                _downBlocks.Add(new Downsample(weights, $"encoder.down_blocks.{_downBlocks.Count}", backend, outDim, config.TemperalDownsample[stage]));
        }
        int top = dims[^1];
        _mid = new MidBlock(weights, "encoder.mid_block", backend, top);
        _normOut = new RmsNorm(weights, "encoder.norm_out.gamma", backend, top);
        _convOut = CausalConv3d.Cube(weights, "encoder.conv_out", backend, top, 2 * config.ZDim);
    }

    public Tensor Forward(Tensor x)
    {
        var h = _convIn.Forward(x);
        foreach (var layer in _downBlocks) h = Step(layer, h);
        h = Step(_mid, h);
        using (h)
        {
            _normOut.ApplyInPlace(h, silu: true);
            return _convOut.Forward(h);
        }
    }

    /// <summary>Runs one layer and frees its input, so a chunk holds at most two activations at a time.</summary>
    internal static Tensor Step(IChunkLayer layer, Tensor input)
    {
        using (input) return layer.Forward(input);
    }

    public void Reset()
    {
        _convIn.Reset();
        foreach (var layer in _downBlocks) layer.Reset();
        _mid.Reset();
        _convOut.Reset();
    }
}
