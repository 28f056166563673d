using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>Wan's channel-first RMS norm (gamma [C,1,1,1] or [C,1,1], no bias) over every position of x [C, ...].</summary>
internal sealed class RmsNorm
{
    private readonly IBackend _backend;
    private readonly Tensor _gamma;
    private readonly int _channels;

    public RmsNorm(WeightSet weights, string name, IBackend backend, int channels, bool perFrame = false)
    {
        _backend = backend;
        _channels = channels;
        var gamma = perFrame ? weights.Take(name, channels, 1, 1) : weights.Take(name, channels, 1, 1, 1);
        _gamma = gamma.Reshape(channels);
    }

    /// <summary>A new tensor norm(x), followed by SiLU when <paramref name="silu"/> (the pre-activation of every conv).</summary>
    public Tensor Forward(Tensor x, bool silu)
    {
        var y = _backend.Allocate(DType.F32, x.Shape);
        Apply(x, y, silu);
        return y;
    }

    /// <summary>Overwrites x with norm(x) (then SiLU): for inputs nothing else reads, saving one activation.</summary>
    public void ApplyInPlace(Tensor x, bool silu) => Apply(x, x, silu);

    private void Apply(Tensor x, Tensor y, bool silu)
    {
        _backend.ChannelRmsNorm(x.Reshape(_channels, -1), _gamma, null, y.Reshape(_channels, -1));
        if (silu) _backend.Silu(y, y);
    }
}
