using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))) + shortcut(x); the shortcut is a 1×1×1 conv when the channel
/// count changes, else the identity.
/// </summary>
internal sealed class ResidualBlock : IChunkLayer
{
    private readonly IBackend _backend;
    private readonly RmsNorm _norm1;
    private readonly CausalConv3d _conv1;
    private readonly RmsNorm _norm2;
    private readonly CausalConv3d _conv2;
    private readonly CausalConv3d? _shortcut;

    public ResidualBlock(WeightSet weights, string name, IBackend backend, int inChannels, int outChannels)
    {
        _backend = backend;
        _norm1 = new RmsNorm(weights, name + ".norm1.gamma", backend, inChannels);
        _conv1 = CausalConv3d.Cube(weights, name + ".conv1", backend, inChannels, outChannels);
        _norm2 = new RmsNorm(weights, name + ".norm2.gamma", backend, outChannels);
        _conv2 = CausalConv3d.Cube(weights, name + ".conv2", backend, outChannels, outChannels);
        if (inChannels != outChannels)
            _shortcut = CausalConv3d.Pointwise(weights, name + ".conv_shortcut", backend, inChannels, outChannels);
    }

    public Tensor Forward(Tensor x)
    {
        Tensor mid;
        using (var a = _norm1.Forward(x, silu: true)) mid = _conv1.Forward(a);
        Tensor y;
        using (mid)
        {
            _norm2.ApplyInPlace(mid, silu: true);
            y = _conv2.Forward(mid);
        }
        if (_shortcut is null)
        {
            _backend.Add(y, x, y);
        }
        else
        {
            using var s = _shortcut.Forward(x);
            _backend.Add(y, s, y);
        }
        return y;
    }

    public void Reset(int clips)
    {
        _conv1.Reset(clips);
        _conv2.Reset(clips);
    }
}
