using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Transformer;

/// <summary>
/// condition_embedder.time_embedder and time_proj, per timestep: sinusoid(t) (freq_dim, cos half first, no frequency
/// shift) → temb = linear_2(SiLU(linear_1(·))) [D] → timestep_proj = time_proj(SiLU(temb)) [6·D] (row j of the [6, D]
/// view is modulation j). G timesteps are one batch of G rows.
/// </summary>
internal sealed class TimestepEmbedder
{
    private readonly IBackend _backend;
    private readonly int _freqDim, _dim;
    private readonly Linear _linear1, _linear2, _proj;

    public TimestepEmbedder(WeightSet weights, string prefix, WanTransformerConfig config, IBackend backend)
    {
        _backend = backend;
        _freqDim = config.FreqDim;
        _dim = config.Dim;
        _linear1 = new Linear(weights, prefix + ".time_embedder.linear_1", config.FreqDim, _dim, backend);
        _linear2 = new Linear(weights, prefix + ".time_embedder.linear_2", _dim, _dim, backend);
        _proj = new Linear(weights, prefix + ".time_proj", _dim, 6 * _dim, backend);
    }

    /// <summary>
    /// temb [G, D] (output modulation) and timestep_proj [G, 6·D] (block modulation) of the G timesteps, with
    /// the set of each row (null: one timestep for all rows).
    /// </summary>
    public TimestepConditioning Forward(float[] timesteps, int[]? rowSets)
    {
        int g = timesteps.Length;
        using var sinusoid = _backend.Allocate(DType.F32, g, _freqDim);
        _backend.TimestepEmbedding(timesteps, _freqDim, flipSinToCos: true, downscaleFreqShift: 0f, sinusoid);
        using var hidden = _linear1.Forward(sinusoid, GemmEpilogue.Silu);
        var temb = _linear2.Forward(hidden);
        try
        {
            using var activated = _backend.Allocate(DType.F32, g, _dim);
            _backend.Silu(temb, activated);
            return new TimestepConditioning(temb, _proj.Forward(activated), rowSets);
        }
        catch
        {
            temb.Dispose();
            throw;
        }
    }
}

/// <summary>condition_embedder.text_embedder: linear_2(GELU-tanh(linear_1(E))) on every row, padding rows included.</summary>
internal sealed class TextEmbedder
{
    private readonly Linear _linear1, _linear2;

    public TextEmbedder(WeightSet weights, string prefix, WanTransformerConfig config, IBackend backend)
    {
        _linear1 = new Linear(weights, prefix + ".linear_1", config.TextDim, config.Dim, backend);
        _linear2 = new Linear(weights, prefix + ".linear_2", config.Dim, config.Dim, backend);
    }

    /// <summary>A new tensor [N, D] for text embeddings [N, text_dim].</summary>
    public Tensor Forward(Tensor text)
    {
        using var hidden = _linear1.Forward(text, GemmEpilogue.GeluTanh);
        return _linear2.Forward(hidden);
    }
}
