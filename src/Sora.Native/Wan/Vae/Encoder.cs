using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// diffusers <c>WanEncoder3d</c>: conv_in → down stages → mid block → norm_out, SiLU → conv_out to 2·z channels
/// (mean ‖ logvar). Wan2.1's stages are a flat down_blocks list (per stage num_res_blocks residual blocks, then a
/// downsampler between stages); Wan2.2's (is_residual) are one <see cref="ResidualDownBlock"/> per stage.
/// Runs one frame at a time (<see cref="FrameStream"/>): a temporal downsampler answers every second frame.
/// </summary>
internal sealed class Encoder
{
    private readonly FrameStream _stream;
    private readonly RmsNorm _normOut;
    private readonly CausalConv3d _convOut;

    public Encoder(WeightSet weights, IBackend backend, WanVaeConfig config, OwnedTensors constants)
    {
        int[] dims = [config.BaseDim, .. config.DimMult.Select(m => config.BaseDim * m)];
        var layers = new List<IChunkLayer> { CausalConv3d.Cube(weights, "encoder.conv_in", backend, config.InChannels, dims[0]) };
        layers.AddRange(config.IsResidual ? ResidualStages(weights, backend, config, dims, constants) : PlainStages(weights, backend, config, dims));
        int top = dims[^1];
        layers.Add(new MidBlock(weights, "encoder.mid_block", backend, top));
        _stream = new FrameStream(backend, layers);
        _normOut = new RmsNorm(weights, "encoder.norm_out.gamma", backend, top);
        _convOut = CausalConv3d.Cube(weights, "encoder.conv_out", backend, top, 2 * config.ZDim);
    }

    private static List<IChunkLayer> PlainStages(WeightSet weights, IBackend backend, WanVaeConfig config, int[] dims)
    {
        var layers = new List<IChunkLayer>();
        int block = 0, stages = config.DimMult.Length;
        for (int stage = 0; stage < stages; stage++)
        {
            int inDim = dims[stage], outDim = dims[stage + 1];
            for (int r = 0; r < config.NumResBlocks; r++, inDim = outDim)
                layers.Add(new ResidualBlock(weights, $"encoder.down_blocks.{block++}", backend, inDim, outDim));
            if (stage != stages - 1)
                layers.Add(new Downsample(weights, $"encoder.down_blocks.{block++}", backend, outDim, config.TemperalDownsample[stage]));
        }
        return layers;
    }

    private static IEnumerable<IChunkLayer> ResidualStages(WeightSet weights, IBackend backend, WanVaeConfig config, int[] dims, OwnedTensors constants)
    {
        int stages = config.DimMult.Length;
        for (int stage = 0; stage < stages; stage++)
        {
            bool down = stage != stages - 1;
            yield return new ResidualDownBlock(weights, $"encoder.down_blocks.{stage}", backend, constants, dims[stage], dims[stage + 1],
                config.NumResBlocks, down, temporal: down && config.TemperalDownsample[stage]);
        }
    }

    /// <summary>
    /// Encodes the next video frame x [in_channels, 1, H, W] (owned: freed here); <paramref name="emit"/> receives
    /// each latent frame [2·z, 1, h, w] as soon as it is complete (after the first frame, then every 4th),
    /// valid only during the call.
    /// </summary>
    public void Forward(Tensor x, Action<Tensor> emit)
    {
        _stream.Run(x, h =>
        {
            _normOut.ApplyInPlace(h, silu: true);
            using var y = _convOut.Forward(h);
            emit(y);
        });
    }

    public void Reset()
    {
        _stream.Reset(1);
        _convOut.Reset(1);
    }
}
