using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>Residual → per-frame attention → residual, at the narrowest resolution of encoder and decoder.</summary>
internal sealed class MidBlock : IChunkLayer
{
    private readonly ResidualBlock _resnet0;
    private readonly AttentionBlock _attention;
    private readonly ResidualBlock _resnet1;

    public MidBlock(WeightSet weights, string name, IBackend backend, int channels)
    {
        _resnet0 = new ResidualBlock(weights, name + ".resnets.0", backend, channels, channels);
        _attention = new AttentionBlock(weights, name + ".attentions.0", backend, channels);
        _resnet1 = new ResidualBlock(weights, name + ".resnets.1", backend, channels, channels);
    }

    public Tensor Forward(Tensor x)
    {
        using var a = _resnet0.Forward(x);
        using var b = _attention.Forward(a);
        return _resnet1.Forward(b);
    }

    public void Reset(int clips)
    {
        _resnet0.Reset(clips);
        _resnet1.Reset(clips);
    }
}
