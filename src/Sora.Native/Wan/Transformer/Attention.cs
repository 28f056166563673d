using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Transformer;

/// <summary>
/// attn1: self-attention over the video tokens. q and k get an RMS norm over the whole inner dim (all heads
/// together, before the head split), then the rotary embedding; v gets neither. Scale 1/√head_dim, no mask.
/// </summary>
internal sealed class SelfAttention
{
    private readonly IBackend _backend;
    private readonly int _heads, _headDim;
    private readonly float _eps;
    private readonly Linear _q, _k, _v, _out;
    private readonly Tensor _normQ, _normK;

    public SelfAttention(WeightSet weights, string prefix, WanTransformerConfig config, IBackend backend)
    {
        _backend = backend;
        _heads = config.NumAttentionHeads;
        _headDim = config.AttentionHeadDim;
        _eps = config.Eps;
        int d = config.Dim;
        _q = new Linear(weights, prefix + ".to_q", d, d, backend);
        _k = new Linear(weights, prefix + ".to_k", d, d, backend);
        _v = new Linear(weights, prefix + ".to_v", d, d, backend);
        _out = new Linear(weights, prefix + ".to_out.0", d, d, backend);
        _normQ = weights.Take(prefix + ".norm_q.weight", d);
        _normK = weights.Take(prefix + ".norm_k.weight", d);
    }

    /// <summary>residual += gate ⊙ to_out(attention) for normed tokens [B·L, D]; <paramref name="offsets"/> separates the B samples.</summary>
    public void Forward(Tensor normed, Tensor residual, Gate gate, RotaryTables rope, int[]? offsets)
    {
        int n = normed.Dim(0);
        using var q = _q.Forward(normed);
        using var k = _k.Forward(normed);
        using var v = _v.Forward(normed);
        _backend.RmsNorm(q, _normQ, _eps, q);
        _backend.RmsNorm(k, _normK, _eps, k);
        var q3 = q.Reshape(n, _heads, _headDim);
        var k3 = k.Reshape(n, _heads, _headDim);
        _backend.ApplyRope(q3, rope.Cos, rope.Sin);
        _backend.ApplyRope(k3, rope.Cos, rope.Sin);
        using var o = _backend.Allocate(DType.F32, n, _heads * _headDim);
        _backend.Attention(q3, k3, v.Reshape(n, _heads, _headDim), o.Reshape(n, _heads, _headDim),
            new AttentionOptions { Scale = 1f / MathF.Sqrt(_headDim), QueryOffsets = offsets, KeyOffsets = offsets });
        _out.AddTo(o, residual, gate);
    }
}

/// <summary>
/// attn2: cross-attention from the video tokens to the projected text (all rows, padding included; no RoPE).
/// Keys and values depend only on the prompt, so they are projected once per prompt (<see cref="ProjectText"/>).
/// </summary>
internal sealed class CrossAttention
{
    private readonly IBackend _backend;
    private readonly int _heads, _headDim;
    private readonly float _eps;
    private readonly Linear _q, _k, _v, _out;
    private readonly Tensor _normQ, _normK;

    public CrossAttention(WeightSet weights, string prefix, WanTransformerConfig config, IBackend backend)
    {
        _backend = backend;
        _heads = config.NumAttentionHeads;
        _headDim = config.AttentionHeadDim;
        _eps = config.Eps;
        int d = config.Dim;
        _q = new Linear(weights, prefix + ".to_q", d, d, backend);
        _k = new Linear(weights, prefix + ".to_k", d, d, backend);
        _v = new Linear(weights, prefix + ".to_v", d, d, backend);
        _out = new Linear(weights, prefix + ".to_out.0", d, d, backend);
        _normQ = weights.Take(prefix + ".norm_q.weight", d);
        _normK = weights.Take(prefix + ".norm_k.weight", d);
    }

    /// <summary>New tensors K = RMSNorm(to_k(C)) and V = to_v(C) for projected text C [N, D].</summary>
    public (Tensor Keys, Tensor Values) ProjectText(Tensor context)
    {
        var keys = _k.Forward(context);
        try
        {
            _backend.RmsNorm(keys, _normK, _eps, keys);
            return (keys, _v.Forward(context));
        }
        catch
        {
            keys.Dispose();
            throw;
        }
    }

    /// <summary>residual += to_out(attention(RMSNorm(to_q(normed)), keys, values)), sequences matched by the offsets.</summary>
    public void Forward(Tensor normed, Tensor residual, Tensor keys, Tensor values, int[]? queryOffsets, int[]? keyOffsets)
    {
        int n = normed.Dim(0), m = keys.Dim(0);
        using var q = _q.Forward(normed);
        _backend.RmsNorm(q, _normQ, _eps, q);
        using var o = _backend.Allocate(DType.F32, n, _heads * _headDim);
        _backend.Attention(q.Reshape(n, _heads, _headDim), keys.Reshape(m, _heads, _headDim), values.Reshape(m, _heads, _headDim),
            o.Reshape(n, _heads, _headDim),
            new AttentionOptions { Scale = 1f / MathF.Sqrt(_headDim), QueryOffsets = queryOffsets, KeyOffsets = keyOffsets });
        _out.AddTo(o, residual);
    }
}

/// <summary>ffn: net.2(GELU-tanh(net.0.proj(x))), added to the residual through the gate.</summary>
internal sealed class FeedForward
{
    /// <summary>Rows per pass: bounds the [rows, ffn_dim] hidden activation (at 480p a whole CFG batch would take 2.3 GB).</summary>
    private const int RowChunk = 8192;

    private readonly Linear _up, _down;

    public FeedForward(WeightSet weights, string prefix, WanTransformerConfig config, IBackend backend)
    {
        _up = new Linear(weights, prefix + ".net.0.proj", config.Dim, config.FfnDim, backend);
        _down = new Linear(weights, prefix + ".net.2", config.FfnDim, config.Dim, backend);
    }

    /// <summary>residual += gate ⊙ FFN(normed), rows processed in chunks (each row is independent).</summary>
    public void Forward(Tensor normed, Tensor residual, Gate gate)
    {
        int n = normed.Dim(0);
        for (int start = 0; start < n; start += RowChunk)
        {
            int rows = Math.Min(RowChunk, n - start);
            using var hidden = _up.Forward(normed.Slice(0, start, rows), GemmEpilogue.GeluTanh);
            _down.AddTo(hidden, residual.Slice(0, start, rows), gate.Rows(start, rows));
        }
    }
}
