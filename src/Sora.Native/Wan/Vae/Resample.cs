using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>A 3×3 Conv2d applied to every frame on its own: weight [out, in, 3, 3] run as a (1,3,3) Conv3d.</summary>
internal sealed class FrameConv2d
{
    private readonly IBackend _backend;
    private readonly Tensor _weight;
    private readonly Tensor _bias;
    private readonly Conv3dGeometry _geometry;
    private readonly int _outChannels;

    public FrameConv2d(WeightSet weights, string name, IBackend backend, int inChannels, int outChannels, Conv3dGeometry geometry)
    {
        _backend = backend;
        _weight = weights.Take(name + ".weight", outChannels, inChannels, 3, 3).Reshape(outChannels, inChannels, 1, 3, 3);
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
/// and a 3×3 conv that halves the channels.
/// </summary>
/// <remarks>
/// The time step (3D only) keeps the very first frame of the sequence as it is; every later frame j goes through
/// a causal (3,1,1) conv to 2C channels whose halves become frames 2j and 2j+1. The first frame is not part of
/// that conv's history, so its cache starts with the second chunk. Decoding feeds one latent frame per chunk,
/// so the first chunk is exactly that one frame.
/// </remarks>
internal sealed class Upsample : IChunkLayer
{
    private readonly IBackend _backend;
    private readonly int _channels;
    private readonly CausalConv3d? _timeConv;
    private readonly FrameConv2d _conv;
    private bool _seenFirstFrame;

    public Upsample(WeightSet weights, string name, IBackend backend, int channels, bool temporal)
    {
        _backend = backend;
        _channels = channels;
        if (temporal) _timeConv = CausalConv3d.Temporal(weights, name + ".time_conv", backend, channels, 2 * channels);
        _conv = new FrameConv2d(weights, name + ".resample.1", backend, channels, channels / 2,
            new Conv3dGeometry(1, 3, 3, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1));
    }

    public Tensor Forward(Tensor x)
    {
        Tensor? doubled = null;
        if (_timeConv is not null)
        {
            if (!_seenFirstFrame)
            {
                if (x.Dim(1) != 1) throw new InvalidOperationException($"the first chunk of a temporal upsampler must be one frame, got {x.Dim(1)}");
                _seenFirstFrame = true;
            }
            else
            {
                doubled = DoubleFrames(x);
            }
        }
        var frames = doubled ?? x;
        using (doubled)
        using (var up = _backend.Allocate(DType.F32, _channels, frames.Dim(1), 2 * frames.Dim(2), 2 * frames.Dim(3)))
        {
            _backend.Upsample2x(frames, up);
            return _conv.Forward(up);
        }
    }

    /// <summary>time_conv to [2C, t] then interleave: output frame 2j+k = channels kC..kC+C−1 of frame j.</summary>
    private Tensor DoubleFrames(Tensor x)
    {
        int c = _channels, t = x.Dim(1), hw = x.Dim(2) * x.Dim(3);
        using var both = _timeConv!.Forward(x);
        var result = _backend.Allocate(DType.F32, c, 2 * t, x.Dim(2), x.Dim(3));
        // Element (c, j, k, p) of the view is both[k·C + c, j, p].
        var interleaved = new Tensor(both.Storage, [c, t, 2, hw], [(long)t * hw, hw, (long)c * t * hw, 1], both.Offset);
        _backend.Copy(interleaved, result.Reshape(c, t, 2, hw));
        return result;
    }

    public void Reset()
    {
        _timeConv?.Reset();
        _seenFirstFrame = false;
    }
}

/// <summary>
/// Encoder downsampler (<c>downsample2d</c> / <c>downsample3d</c>): zero pad right and bottom, 3×3 conv with
/// stride 2 per frame; the 3D one then halves time with a (3,1,1) stride-2 conv.
/// </summary>
/// <remarks>
/// The time conv leaves the first chunk (the first frame alone when encoding) as it is and remembers its last
/// frame; each later chunk is convolved without padding behind that remembered frame, so output j ≥ 1 sees
/// frames 2j−2, 2j−1, 2j of the whole sequence.
/// </remarks>
internal sealed class Downsample : IChunkLayer
{
    private readonly IBackend _backend;
    private readonly int _channels;
    private readonly FrameConv2d _conv;
    private readonly Tensor? _timeWeight;
    private readonly Tensor? _timeBias;
    private Tensor? _lastFrame;

    // The remembered frame stands in front of the chunk as a 1-frame cache over a 1-frame "padding".
    private static readonly Conv3dGeometry TimeGeometry = new(3, 1, 1, StrideT: 2, PadT0: 1);

    public Downsample(WeightSet weights, string name, IBackend backend, int channels, bool temporal)
    {
        _backend = backend;
        _channels = channels;
        _conv = new FrameConv2d(weights, name + ".resample.1", backend, channels, channels,
            new Conv3dGeometry(1, 3, 3, StrideH: 2, StrideW: 2, PadH1: 1, PadW1: 1));
        if (temporal)
        {
            _timeWeight = weights.Take(name + ".time_conv.weight", channels, channels, 3, 1, 1);
            _timeBias = weights.Take(name + ".time_conv.bias", channels);
        }
    }

    public Tensor Forward(Tensor x)
    {
        var y = _conv.Forward(x);
        if (_timeWeight is null) return y;

        int t = y.Dim(1);
        if (_lastFrame is null)
        {
            _lastFrame = LastFrame(y);
            return y;
        }
        if (t < 2) throw new InvalidOperationException($"a temporal downsampler needs chunks of at least 2 frames after the first, got {t}");
        using (y)
        {
            var z = _backend.Allocate(DType.F32, _channels, TimeGeometry.OutT(t), y.Dim(2), y.Dim(3));
            _backend.Conv3d(y, _timeWeight, _timeBias, z, TimeGeometry, _lastFrame);
            _lastFrame.Dispose();
            _lastFrame = LastFrame(y);
            return z;
        }
    }

    private Tensor LastFrame(Tensor y)
    {
        var last = _backend.Allocate(DType.F32, _channels, 1, y.Dim(2), y.Dim(3));
        _backend.Copy(y.Slice(1, y.Dim(1) - 1, 1), last);
        return last;
    }

    public void Reset()
    {
        _lastFrame?.Dispose();
        _lastFrame = null;
    }
}
