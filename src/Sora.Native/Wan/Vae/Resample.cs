using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>A 3×3 Conv2d applied to every frame on its own: weight [out, in, 3, 3] run as a (1,3,3) Conv3d.</summary>
internal sealed class FrameConv2d
{
    private readonly IBackend _backend;
    private readonly Weight _weight;
    private readonly Tensor _bias;
    private readonly Conv3dGeometry _geometry;
    private readonly int _outChannels;

    public FrameConv2d(WeightSet weights, string name, IBackend backend, int inChannels, int outChannels, Conv3dGeometry geometry)
    {
        _backend = backend;
        _weight = weights.TakeWeight(name + ".weight", outChannels, inChannels, 3, 3);
        _bias = weights.Take(name + ".bias", outChannels);
        _geometry = geometry;
        _outChannels = outChannels;
    }

    public Tensor Forward(Tensor x)
    {
        var y = _backend.Allocate(DType.F32, _outChannels, x.Dim(1), _geometry.OutH(x.Dim(2)), _geometry.OutW(x.Dim(3)));
        _backend.Conv3d(x, _weight, _bias, y, _geometry);
        return y;
    }
}

/// <summary>
/// Decoder upsampler (<c>upsample2d</c> / <c>upsample3d</c>): optionally doubles time, then nearest 2× in space
/// and a 3×3 conv to <c>outChannels</c> (Wan2.1 halves the channels, Wan2.2's residual stages keep them).
/// </summary>
/// <remarks>
/// The time step (3D only) keeps the very first frame of the sequence as it is; every later frame j goes through
/// a causal (3,1,1) conv to 2C channels whose halves become frames 2j and 2j+1. The first frame is not part of
/// that conv's history, so its cache starts with the second call. The decoder streams one frame (of each clip) at
/// a time, so the first call holds exactly that first frame.
/// </remarks>
internal sealed class Upsample : IChunkLayer
{
    private readonly IBackend _backend;
    private readonly int _channels;
    private readonly CausalConv3d? _timeConv;
    private readonly FrameConv2d _conv;
    private int _clips = 1;
    private bool _seenFirstFrame;

    public Upsample(WeightSet weights, string name, IBackend backend, int channels, int outChannels, bool temporal)
    {
        _backend = backend;
        _channels = channels;
        if (temporal) _timeConv = CausalConv3d.Temporal(weights, name + ".time_conv", backend, channels, 2 * channels);
        _conv = new FrameConv2d(weights, name + ".resample.1", backend, channels, outChannels,
            new Conv3dGeometry(1, 3, 3, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1));
    }

    public Tensor Forward(Tensor x)
    {
        Tensor? doubled = null;
        if (_timeConv is not null)
        {
            if (x.Dim(1) != _clips) throw new InvalidOperationException($"a temporal upsampler takes one frame of each of {_clips} clips, got {x.ShapeString}");
            if (_seenFirstFrame) doubled = DoubleFrames(x);
            _seenFirstFrame = true;
        }
        var frames = doubled ?? x;
        using (doubled)
        using (var up = _backend.Allocate(DType.F32, _channels, frames.Dim(1), 2 * frames.Dim(2), 2 * frames.Dim(3)))
        {
            _backend.Upsample2x(frames, up);
            return _conv.Forward(up);
        }
    }

    /// <summary>
    /// time_conv to [2C, clips] then split: frame k of clip b (output index k·clips + b, frame-major) = channels
    /// kC..kC+C−1 of b.
    /// </summary>
    private Tensor DoubleFrames(Tensor x)
    {
        int c = _channels, n = x.Dim(1), hw = x.Dim(2) * x.Dim(3);
        using var both = _timeConv!.Forward(x);
        var result = _backend.Allocate(DType.F32, c, 2 * n, x.Dim(2), x.Dim(3));
        // Element (c, k, b, p) of the view is both[k·C + c, b, p].
        var split = new Tensor(both.Storage, [c, 2, n, hw], [(long)n * hw, (long)c * n * hw, hw, 1], both.Offset);
        _backend.Copy(split, result.Reshape(c, 2, n, hw));
        return result;
    }

    public void Reset(int clips)
    {
        _timeConv?.Reset(clips);
        _clips = clips;
        _seenFirstFrame = false;
    }
}

/// <summary>
/// Encoder downsampler (<c>downsample2d</c> / <c>downsample3d</c>): zero pad right and bottom, 3×3 conv with
/// stride 2 per frame; the 3D one then halves time with a (3,1,1) stride-2 conv.
/// </summary>
/// <remarks>
/// The time conv lets the very first frame through as it is; after that, output j ≥ 1 is the conv over frames
/// 2j−2, 2j−1, 2j of the sequence (no padding). Fed one frame at a time it keeps the previous two frames as the
/// conv's time cache and answers only every second frame.
/// </remarks>
internal sealed class Downsample : IChunkLayer
{
    private readonly IBackend _backend;
    private readonly int _channels;
    private readonly FrameConv2d _conv;
    private readonly Weight? _timeWeight;
    private readonly Tensor? _timeBias;
    private Tensor? _history; // the last 1 or 2 frames after the spatial conv

    // The 2 history frames stand in front of the new frame as the cache over 2 frames of "padding".
    private static readonly Conv3dGeometry TimeGeometry = new(3, 1, 1, StrideT: 2, PadT0: 2);

    public Downsample(WeightSet weights, string name, IBackend backend, int channels, bool temporal)
    {
        _backend = backend;
        _channels = channels;
        _conv = new FrameConv2d(weights, name + ".resample.1", backend, channels, channels,
            new Conv3dGeometry(1, 3, 3, StrideH: 2, StrideW: 2, PadH1: 1, PadW1: 1));
        if (temporal)
        {
            _timeWeight = weights.TakeWeight(name + ".time_conv.weight", channels, channels, 3, 1, 1);
            _timeBias = weights.Take(name + ".time_conv.bias", channels);
        }
    }

    public Tensor? Forward(Tensor x)
    {
        var y = _conv.Forward(x);
        if (_timeWeight is null) return y;
        if (y.Dim(1) != 1) throw new InvalidOperationException($"a temporal downsampler takes one frame at a time, got {y.ShapeString}");

        if (_history is null)
        {
            _history = Copy(y); // the first frame passes through and heads the history
            return y;
        }
        using (y)
        {
            if (_history.Dim(1) == 1)
            {
                // First frame of a pair: nothing to give until its partner arrives.
                var pair = _backend.Allocate(DType.F32, _channels, 2, y.Dim(2), y.Dim(3));
                _backend.Copy(_history, pair.Slice(1, 0, 1));
                _backend.Copy(y, pair.Slice(1, 1, 1));
                _history.Dispose();
                _history = pair;
                return null;
            }
            var z = _backend.Allocate(DType.F32, _channels, 1, y.Dim(2), y.Dim(3));
            _backend.Conv3d(y, _timeWeight, _timeBias, z, TimeGeometry, _history);
            _history.Dispose();
            _history = Copy(y);
            return z;
        }
    }

    private Tensor Copy(Tensor frame)
    {
        var copy = _backend.Allocate(DType.F32, frame.Shape);
        _backend.Copy(frame, copy);
        return copy;
    }

    /// <summary>Encoding streams one clip at a time.</summary>
    public void Reset(int clips)
    {
        if (clips != 1) throw new NotSupportedException($"a temporal downsampler streams one clip, not {clips}");
        _history?.Dispose();
        _history = null;
    }
}
