using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// Single-head self-attention over the H·W positions of each frame separately (no mixing across time):
/// x + proj(attention(q, k, v)) with q, k, v from a 1×1 projection of norm(x). The projections run as GEMMs
/// over position-major rows [T·H·W, C], so the frame is transposed in and out around them.
/// </summary>
internal sealed class AttentionBlock : IChunkLayer
{
    private readonly IBackend _backend;
    private readonly int _channels;
    private readonly RmsNorm _norm;
    private readonly Weight _qkvWeight;
    private readonly Tensor _qkvBias;
    private readonly Weight _projWeight;
    private readonly Tensor _projBias;

    public AttentionBlock(WeightSet weights, string name, IBackend backend, int channels)
    {
        _backend = backend;
        _channels = channels;
        _norm = new RmsNorm(weights, name + ".norm.gamma", backend, channels, perFrame: true);
        _qkvWeight = weights.TakeWeight(name + ".to_qkv.weight", 3 * channels, channels, 1, 1);
        _qkvBias = weights.Take(name + ".to_qkv.bias", 3 * channels);
        _projWeight = weights.TakeWeight(name + ".proj.weight", channels, channels, 1, 1);
        _projBias = weights.Take(name + ".proj.bias", channels);
    }

    public Tensor Forward(Tensor x)
    {
        int c = _channels, t = x.Dim(1), hw = x.Dim(2) * x.Dim(3), rows = t * hw;

        using var qkv = _backend.Allocate(DType.F32, rows, 3 * c);
        using (var normed = _norm.Forward(x, silu: false))
        using (var tokens = _backend.Allocate(DType.F32, rows, c))
        {
            _backend.Copy(normed.Reshape(c, rows).Permute(1, 0), tokens);
            _backend.Gemm(tokens, _qkvWeight, _qkvBias, qkv);
        }

        using var attended = _backend.Allocate(DType.F32, rows, 1, c);
        var frames = Enumerable.Range(0, t + 1).Select(f => f * hw).ToArray();
        _backend.Attention(Head(qkv, 0), Head(qkv, 1), Head(qkv, 2), attended, new AttentionOptions
        {
            Scale = 1f / MathF.Sqrt(c),
            QueryOffsets = t > 1 ? frames : null,
            KeyOffsets = t > 1 ? frames : null,
        });

        var y = _backend.Allocate(DType.F32, x.Shape);
        using (var projected = _backend.Allocate(DType.F32, rows, c))
        {
            _backend.Gemm(attended.Reshape(rows, c), _projWeight, _projBias, projected);
            _backend.Copy(projected.Permute(1, 0), y.Reshape(c, rows));
        }
        _backend.Add(y, x, y);
        return y;
    }

    /// <summary>Part <paramref name="part"/> (0 q, 1 k, 2 v) of the fused rows as a one-head view [rows, 1, C].</summary>
    private Tensor Head(Tensor qkv, int part)
    {
        int c = _channels;
        return new Tensor(qkv.Storage, [qkv.Dim(0), 1, c], [3L * c, c, 1], qkv.Offset + part * c);
    }

    public void Reset(int clips) { }
}
