using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// diffusers <c>AvgDown3D</c>, the parameter-free shortcut of a Wan2.2 encoder stage. With F = ft·fs², the
/// ft×fs×fs blocks of x [C, T, H, W] (time zero-padded in front to a multiple of ft) are read as C·F values
/// ordered n = c·F + dt·fs² + dh·fs + dw, and output channel o is the mean of the g = C·F/out values from o·g:
/// y[o, t, i, j] = (1/g)·Σ_{n ∈ [o·g, o·g+g)} x[n / F, ft·t + dt(n), fs·i + dh(n), fs·j + dw(n)].
/// That is a convolution with kernel = stride = (ft, fs, fs) and weight w[o, n] = 1/g on o's group, 0 elsewhere.
/// </summary>
/// <remarks>
/// The reference encodes the first frame alone (padded with one zero frame in front) and then chunks of 4 frames
/// (whole pairs at every temporal stage). Streamed one frame at a time this answers the first frame at once and
/// then every second frame together with the one before it: in step with the main path's temporal downsampler.
/// </remarks>
internal sealed class AvgDown3d
{
    private readonly IBackend _backend;
    private readonly Tensor _weight;
    private readonly Conv3dGeometry _geometry;
    private readonly bool _temporal;
    private bool _seenFirstFrame;
    private Tensor? _pending; // the first frame of a pair

    public AvgDown3d(IBackend backend, OwnedTensors constants, int inChannels, int outChannels, bool temporal, bool spatial)
    {
        _backend = backend;
        _temporal = temporal;
        int ft = temporal ? 2 : 1, fs = spatial ? 2 : 1, factor = ft * fs * fs;
        int group = inChannels * factor / outChannels, row = inChannels * factor;
        var weight = new float[(long)outChannels * row];
        for (int o = 0; o < outChannels; o++)
            Array.Fill(weight, 1f / group, o * row + o * group, group);
        _weight = constants.Upload(weight, outChannels, inChannels, ft, fs, fs);
        _geometry = new Conv3dGeometry(ft, fs, fs, StrideT: ft, StrideH: fs, StrideW: fs, PadT0: ft - 1);
    }

    /// <summary>The shortcut for the next frame x [C, 1, H, W] (not taken), or null while a pair is incomplete.</summary>
    public Tensor? Forward(Tensor x)
    {
        if (!_temporal || !_seenFirstFrame)
        {
            _seenFirstFrame = true;
            return Average(x, null);
        }
        if (_pending is null)
        {
            _pending = _backend.Allocate(DType.F32, x.Shape);
            _backend.Copy(x, _pending);
            return null;
        }
        using (_pending)
        {
            var y = Average(x, _pending);
            _pending = null;
            return y;
        }
    }

    /// <summary>The conv over (previous ‖ x): a missing previous frame reads as the zero padding.</summary>
    private Tensor Average(Tensor x, Tensor? previous)
    {
        var y = _backend.Allocate(DType.F32, _weight.Dim(0), 1, _geometry.OutH(x.Dim(2)), _geometry.OutW(x.Dim(3)));
        _backend.Conv3d(x, _weight, null, y, _geometry, previous);
        return y;
    }

    public void Reset()
    {
        _pending?.Dispose();
        _pending = null;
        _seenFirstFrame = false;
    }
}

/// <summary>
/// diffusers <c>DupUp3D</c>, the parameter-free shortcut of a Wan2.2 decoder stage (fs = 2, ft = 2 when the
/// stage doubles time): each input channel repeated r = out·F/in times (F = ft·fs²) gives out·F values per
/// position, value m = o·F + dt·fs² + dh·fs + dw of which lands at y[o, ft·t + dt, fs·h + dh, fs·w + dw]:
/// y[o, ft·t + dt, fs·h + dh, fs·w + dw] = x[(o·F + dt·fs² + dh·fs + dw) / r, t, h, w].
/// On the first chunk the first ft − 1 output frames are dropped.
/// </summary>
/// <remarks>
/// The reference decodes one latent frame per chunk with first_chunk set for latent frame 0, and each stage then
/// sees exactly one frame: streamed one frame at a time, the first frame this shortcut sees is that first chunk.
/// The shortcut is per frame, so later frames give the same result alone as in the reference's chunks.
/// </remarks>
internal sealed class DupUp3d
{
    private const int Fs = 2;

    private readonly IBackend _backend;
    private readonly int _inChannels;
    private readonly int _outChannels;
    private readonly int _ft;
    private bool _seenFirstFrame;

    public DupUp3d(IBackend backend, int inChannels, int outChannels, bool temporal)
    {
        _backend = backend;
        _inChannels = inChannels;
        _outChannels = outChannels;
        _ft = temporal ? 2 : 1;
    }

    /// <summary>
    /// The shortcut of the next frame of each of n clips, x [in, n, H, W] (not taken): [out, frames·n, 2H, 2W] with
    /// frames = ft (1 for the first frame), frame-major (frame j of clip b at j·n + b).
    /// </summary>
    public Tensor Forward(Tensor x)
    {
        int factor = _ft * Fs * Fs, repeats = _outChannels * factor / _inChannels;
        int n = x.Dim(1), h = x.Dim(2), w = x.Dim(3), oh = Fs * h, ow = Fs * w;
        int firstDt = _seenFirstFrame ? 0 : _ft - 1, frames = _ft - firstDt;
        _seenFirstFrame = true;

        // Input channel (o·F + k) / r, k = dt·fs² + dh·fs + dw, steps by F/d over o = u·p + v with d = gcd(F, r) and
        // period p = r/d: one strided copy per (k, v) moves all output channels of that residue class at once.
        int d = (int)System.Numerics.BigInteger.GreatestCommonDivisor(factor, repeats);
        int period = repeats / d, step = factor / d;
        long outPlane = (long)oh * ow;
        var y = _backend.Allocate(DType.F32, _outChannels, frames * n, oh, ow);
        for (int dt = firstDt; dt < _ft; dt++)
            for (int dh = 0; dh < Fs; dh++)
                for (int dw = 0; dw < Fs; dw++)
                    for (int v = 0; v < period; v++)
                    {
                        int k = dt * Fs * Fs + dh * Fs + dw, channel = (v * factor + k) / repeats;
                        int[] shape = [_outChannels / period, n, h, w];
                        var from = new Tensor(x.Storage, shape, [step * x.Strides[0], x.Strides[1], x.Strides[2], x.Strides[3]], x.Offset + channel * x.Strides[0]);
                        var to = new Tensor(y.Storage, shape, [period * frames * n * outPlane, outPlane, Fs * ow, Fs],
                            y.Offset + v * frames * n * outPlane + (dt - firstDt) * n * outPlane + dh * ow + dw);
                        _backend.Copy(from, to);
                    }
        return y;
    }

    public void Reset() => _seenFirstFrame = false;
}

/// <summary>Constant tensors the VAE builds itself (not read from the checkpoint), freed with it.</summary>
internal sealed class OwnedTensors(IBackend backend) : IDisposable
{
    private readonly List<Tensor> _tensors = [];

    public Tensor Upload(float[] data, params int[] shape)
    {
        using var host = Tensor.FromArray(data, shape);
        var tensor = backend.ToDevice(host);
        _tensors.Add(tensor);
        return tensor;
    }

    public void Dispose()
    {
        foreach (var t in _tensors) t.Dispose();
        _tensors.Clear();
    }
}
