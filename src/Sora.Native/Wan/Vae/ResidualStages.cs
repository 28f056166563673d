using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// diffusers <c>WanResidualDownBlock</c> (Wan2.2 encoder stage):
/// y = downsampler(resnets(x)) + AvgDown3D(x), the downsampler (and the shortcut's halving of H and W) only
/// where the stage downsamples, halving time too where it is temporal. Fed one frame at a time,
/// it answers null while a temporal pair is incomplete (main path and shortcut together).
/// </summary>
internal sealed class ResidualDownBlock : IChunkLayer
{
    private readonly IBackend _backend;
    private readonly ResidualBlock[] _resnets;
    private readonly Downsample? _downsampler;
    private readonly AvgDown3d _shortcut;

    public ResidualDownBlock(WeightSet weights, string name, IBackend backend, OwnedTensors constants,
        int inDim, int outDim, int numResBlocks, bool down, bool temporal)
    {
        _backend = backend;
        _resnets = Enumerable.Range(0, numResBlocks)
            .Select(r => new ResidualBlock(weights, $"{name}.resnets.{r}", backend, r == 0 ? inDim : outDim, outDim)).ToArray();
        if (down) _downsampler = new Downsample(weights, name + ".downsampler", backend, outDim, temporal);
        _shortcut = new AvgDown3d(backend, constants, inDim, outDim, temporal: down && temporal, spatial: down);
    }

    public Tensor? Forward(Tensor x)
    {
        var h = Resnets.Run(_resnets, x);
        Tensor? y = h;
        if (_downsampler is not null)
            using (h) y = _downsampler.Forward(h);
        var shortcut = _shortcut.Forward(x);
        if ((y is null) != (shortcut is null))
        {
            y?.Dispose();
            shortcut?.Dispose();
            throw new InvalidOperationException("the downsampler and the average shortcut of a residual down block fell out of step");
        }
        if (y is null) return null;
        using (shortcut) _backend.Add(y, shortcut!, y);
        return y;
    }

    public void Reset(int clips)
    {
        foreach (var r in _resnets) r.Reset(clips);
        _downsampler?.Reset(clips);
        _shortcut.Reset();
    }
}

/// <summary>
/// diffusers <c>WanResidualUpBlock</c> (Wan2.2 decoder stage): y = upsampler(resnets(x)) + DupUp3D(x) with
/// num_res_blocks + 1 resnets; where the stage does not upsample (the last stage) just the resnets. The
/// upsampler keeps the channel count (Wan2.1's halves it). Gives 2 frames per input frame where it doubles time,
/// except for the very first frame.
/// </summary>
internal sealed class ResidualUpBlock : IChunkLayer
{
    private readonly IBackend _backend;
    private readonly ResidualBlock[] _resnets;
    private readonly Upsample? _upsampler;
    private readonly DupUp3d? _shortcut;

    public ResidualUpBlock(WeightSet weights, string name, IBackend backend, int inDim, int outDim, int numResBlocks, bool up, bool temporal)
    {
        _backend = backend;
        _resnets = Enumerable.Range(0, numResBlocks + 1)
            .Select(r => new ResidualBlock(weights, $"{name}.resnets.{r}", backend, r == 0 ? inDim : outDim, outDim)).ToArray();
        if (up)
        {
            _upsampler = new Upsample(weights, name + ".upsampler", backend, outDim, outDim, temporal);
            _shortcut = new DupUp3d(backend, inDim, outDim, temporal);
        }
    }

    public Tensor Forward(Tensor x)
    {
        var y = Resnets.Run(_resnets, x);
        if (_upsampler is null) return y;
        using (var h = y) y = _upsampler.Forward(h);
        using var shortcut = _shortcut!.Forward(x);
        _backend.Add(y, shortcut, y);
        return y;
    }

    public void Reset(int clips)
    {
        foreach (var r in _resnets) r.Reset(clips);
        _upsampler?.Reset(clips);
        _shortcut?.Reset();
    }
}

internal static class Resnets
{
    /// <summary>x (not taken) through the residual blocks in order: a new tensor.</summary>
    public static Tensor Run(IReadOnlyList<ResidualBlock> resnets, Tensor x)
    {
        var h = resnets[0].Forward(x);
        for (int r = 1; r < resnets.Count; r++)
            using (var previous = h)
                h = resnets[r].Forward(previous);
        return h;
    }
}
