using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Transformer;

/// <summary>
/// One Wan block. (shift, scale, gate, c_shift, c_scale, c_gate) = scale_shift_table + timestep_proj (per token
/// when the timestep is);
/// x += gate·SelfAttn(LN(x)·(1+scale)+shift); x += CrossAttn(LN_affine(x), text); x += c_gate·FFN(LN(x)·(1+c_scale)+c_shift).
/// </summary>
internal sealed class WanTransformerBlock
{
    private readonly IBackend _backend;
    private readonly int _dim;
    private readonly float _eps;
    private readonly Tensor _scaleShiftTable;
    private readonly SelfAttention _selfAttention;
    private readonly Tensor? _norm2Weight, _norm2Bias;
    private readonly CrossAttention _crossAttention;
    private readonly FeedForward _feedForward;

    public WanTransformerBlock(WeightSet weights, string prefix, WanTransformerConfig config, IBackend backend)
    {
        _backend = backend;
        _dim = config.Dim;
        _eps = config.Eps;
        _scaleShiftTable = weights.Take(prefix + ".scale_shift_table", 1, 6, _dim);
        _selfAttention = new SelfAttention(weights, prefix + ".attn1", config, backend);
        if (config.CrossAttnNorm)
        {
            _norm2Weight = weights.Take(prefix + ".norm2.weight", _dim);
            _norm2Bias = weights.Take(prefix + ".norm2.bias", _dim);
        }
        _crossAttention = new CrossAttention(weights, prefix + ".attn2", config, backend);
        _feedForward = new FeedForward(weights, prefix + ".ffn", config, backend);
    }

    public CrossAttention CrossAttention => _crossAttention;

    /// <summary>Updates the residual stream x [B·L, D] in place.</summary>
    public void Forward(Tensor x, TimestepConditioning time, TextKeys text, RotaryTables rope, PackedLayout layout)
    {
        using var modulation = Modulation.Block(_backend, _scaleShiftTable.Reshape(6, _dim), time, _dim);

        using var normed = _backend.Allocate(DType.F32, x.Dim(0), _dim);
        modulation.AdaLn(x, shift: 0, scale: 1, _eps, normed);
        _selfAttention.Forward(normed, x, modulation.Gate(2), rope, layout.TokenOffsets);

        if (_norm2Weight is not null) _backend.LayerNorm(x, _norm2Weight, _norm2Bias, _eps, normed);
        else _backend.Copy(x, normed);
        _crossAttention.Forward(normed, x, text.Keys, text.Values, layout.TokenOffsets, layout.TextOffsets);

        modulation.AdaLn(x, shift: 3, scale: 4, _eps, normed);
        _feedForward.Forward(normed, x, modulation.Gate(5));
    }
}

/// <summary>How the rows of one forward pass are packed: cumulative starts of the B samples' video tokens and of their texts (null for one sample).</summary>
internal sealed record PackedLayout(int[]? TokenOffsets, int[]? TextOffsets);

/// <summary>One block's cross-attention keys and values for a packed set of prompts.</summary>
internal sealed record TextKeys(Tensor Keys, Tensor Values) : IDisposable
{
    public void Dispose()
    {
        Keys.Dispose();
        Values.Dispose();
    }
}
