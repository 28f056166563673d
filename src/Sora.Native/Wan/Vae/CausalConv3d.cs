using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// Wan's causal 3D convolution (diffusers <c>WanCausalConv3d</c>): spatial zero padding on both sides, time
/// padding of 2·p frames in front only. Run chunk by chunk it carries the last 2 frames of its input: the next
/// chunk reads them in place of that many zero frames, which makes the chunked result equal to one causal
/// convolution over the whole sequence while only 2 frames are held.
/// </summary>
internal sealed class CausalConv3d : IChunkLayer
{
    private const int CacheFrames = 2;

    private readonly IBackend _backend;
    private readonly Weight _weight;
    private readonly Tensor _bias;
    private readonly Conv3dGeometry _geometry;
    private readonly int _outChannels;
    private Tensor? _cache;

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
        int t = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        var y = _backend.Allocate(DType.F32, _outChannels, _geometry.OutT(t), _geometry.OutH(h), _geometry.OutW(w));
        _backend.Conv3d(x, _weight, _bias, y, _geometry, _cache);
        if (_geometry.PadT0 > 0) KeepLastFrames(x);
        return y;
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

    public void Reset()
    {
        _cache?.Dispose();
        _cache = null;
    }
}
