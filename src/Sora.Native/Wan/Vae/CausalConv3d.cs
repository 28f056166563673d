using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// Wan's causal 3D convolution (diffusers <c>WanCausalConv3d</c>): spatial zero padding on both sides, time
/// padding of 2·p frames in front only. Run chunk by chunk it carries the last 2 frames of its input: the next
/// chunk reads them in place of that many zero frames, which makes the chunked result equal to one causal
/// convolution over the whole sequence while only 2 frames are held.
/// </summary>
/// <remarks>
/// Several clips side by side (see <see cref="IChunkLayer"/>) take one frame of each: clip b's window — its two
/// previous frames (zeros before its first) and the new one — sits at frames 3b..3b+2 of one tensor, so the same
/// convolution with time stride 3 and no time padding gives every clip's output frame in one call.
/// </remarks>
internal sealed class CausalConv3d : IChunkLayer
{
    private const int CacheFrames = 2;

    private readonly IBackend _backend;
    private readonly Weight _weight;
    private readonly Tensor _bias;
    private readonly Conv3dGeometry _geometry;
    private readonly int _outChannels;
    private Tensor? _cache;
    private int _clips = 1;
    private Tensor? _windows; // clips side by side: [Cin, 3·clips, H, W], slots 0 and 1 of each clip filled

    private CausalConv3d(IBackend backend, Weight weight, Tensor bias, Conv3dGeometry geometry)
    {
        _backend = backend;
        _weight = weight;
        _bias = bias;
        _geometry = geometry;
        _outChannels = weight.Out;
    }

    /// <summary>Kernel 3 in time and space, padding 1 (2 frames in front in time).</summary>
    public static CausalConv3d Cube(WeightSet weights, string name, IBackend backend, int inChannels, int outChannels)
        => new(backend, weights.TakeWeight(name + ".weight", outChannels, inChannels, 3, 3, 3), weights.Take(name + ".bias", outChannels),
            new Conv3dGeometry(3, 3, 3, PadT0: 2, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1));

    /// <summary>Kernel 1: a per-position channel projection (no padding, nothing cached).</summary>
    public static CausalConv3d Pointwise(WeightSet weights, string name, IBackend backend, int inChannels, int outChannels)
        => new(backend, weights.TakeWeight(name + ".weight", outChannels, inChannels, 1, 1, 1), weights.Take(name + ".bias", outChannels),
            new Conv3dGeometry(1, 1, 1));

    /// <summary>Kernel (3,1,1), time padding 1: the time convolution of the 3D upsampler.</summary>
    public static CausalConv3d Temporal(WeightSet weights, string name, IBackend backend, int inChannels, int outChannels)
        => new(backend, weights.TakeWeight(name + ".weight", outChannels, inChannels, 3, 1, 1), weights.Take(name + ".bias", outChannels),
            new Conv3dGeometry(3, 1, 1, PadT0: 2));

    public Tensor Forward(Tensor x)
    {
        if (_clips > 1 && _geometry.PadT0 > 0) return ForwardClips(x);
        int t = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        var y = _backend.Allocate(DType.F32, _outChannels, _geometry.OutT(t), _geometry.OutH(h), _geometry.OutW(w));
        _backend.Conv3d(x, _weight, _bias, y, _geometry, _cache);
        if (_geometry.PadT0 > 0) KeepLastFrames(x);
        return y;
    }

    /// <summary>One frame of each clip, x [Cin, clips, H, W]: every clip's window convolved in one call, then shifted by a frame.</summary>
    private Tensor ForwardClips(Tensor x)
    {
        int c = x.Dim(0), n = _clips, h = x.Dim(2), w = x.Dim(3), hw = h * w, span = CacheFrames + 1;
        if (x.Dim(1) != n) throw new InvalidOperationException($"a causal conv over {n} clips takes one frame of each, got {x.ShapeString}");
        if (_geometry.KernelT != span || _geometry.PadT0 != CacheFrames || _geometry.StrideT != 1)
            throw new InvalidOperationException($"clips side by side need a kernel of {span} frames in time, padded {CacheFrames} in front: {_geometry}");
        _windows ??= Zeros(c, span * n, h, w);
        _backend.Copy(x.Reshape(c, n, 1, hw), Slots(_windows, 2, 1));
        var y = _backend.Allocate(DType.F32, _outChannels, n, _geometry.OutH(h), _geometry.OutW(w));
        try
        {
            _backend.Conv3d(_windows, _weight, _bias, y, _geometry with { StrideT = span, PadT0 = 0 });
            var next = _backend.Allocate(DType.F32, c, span * n, h, w);
            _backend.Copy(Slots(_windows, 1, CacheFrames), Slots(next, 0, CacheFrames));
            _windows.Dispose();
            _windows = next;
            return y;
        }
        catch
        {
            y.Dispose();
            throw;
        }
    }

    /// <summary>Slots from..from+count−1 of every clip's window in <paramref name="windows"/> [C, 3·clips, H, W], as [C, clips, count, H·W].</summary>
    private Tensor Slots(Tensor windows, int from, int count)
    {
        int c = windows.Dim(0), span = CacheFrames + 1, n = windows.Dim(1) / span;
        long hw = (long)windows.Dim(2) * windows.Dim(3);
        return new Tensor(windows.Storage, [c, n, count, (int)hw], [span * n * hw, span * hw, hw, 1], windows.Offset + from * hw);
    }

    private Tensor Zeros(params int[] shape)
    {
        using var host = Tensor.FromArray(new float[shape.Aggregate(1L, (a, b) => a * b)], shape);
        return _backend.ToDevice(host);
    }

    /// <summary>The cache becomes the last 2 frames of (old cache ‖ x): fewer only at the very start.</summary>
    private void KeepLastFrames(Tensor x)
    {
        int t = x.Dim(1);
        if (_cache is { } full && full.Dim(1) == CacheFrames)
        {
            // Steady state: overwrite the 2-frame cache in place instead of holding a second one.
            if (t >= CacheFrames)
            {
                _backend.Copy(x.Slice(1, t - CacheFrames, CacheFrames), full);
            }
            else
            {
                _backend.Copy(full.Slice(1, 1, 1), full.Slice(1, 0, 1));
                _backend.Copy(x, full.Slice(1, 1, 1));
            }
            return;
        }
        int fromX = Math.Min(t, CacheFrames);
        int cached = _cache?.Dim(1) ?? 0;
        int fromCache = Math.Min(CacheFrames - fromX, cached);
        var next = _backend.Allocate(DType.F32, x.Dim(0), fromCache + fromX, x.Dim(2), x.Dim(3));
        if (fromCache > 0) _backend.Copy(_cache!.Slice(1, cached - fromCache, fromCache), next.Slice(1, 0, fromCache));
        _backend.Copy(x.Slice(1, t - fromX, fromX), next.Slice(1, fromCache, fromX));
        _cache?.Dispose();
        _cache = next;
    }

    public void Reset(int clips)
    {
        _cache?.Dispose();
        _cache = null;
        _windows?.Dispose();
        _windows = null;
        _clips = clips;
    }
}
