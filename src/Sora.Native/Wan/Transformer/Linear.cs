using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Transformer;

/// <summary>A torch Linear: y = x·Wᵀ + b with W [out, in] and b [out], bound as <c>{prefix}.weight</c> / <c>{prefix}.bias</c>.</summary>
internal sealed class Linear
{
    private readonly IBackend _backend;

    public Linear(WeightSet weights, string prefix, int inFeatures, int outFeatures, IBackend backend)
    {
        _backend = backend;
        In = inFeatures;
        Out = outFeatures;
        Weight = weights.Take(prefix + ".weight", outFeatures, inFeatures);
        Bias = weights.Take(prefix + ".bias", outFeatures);
    }

    public int In { get; }
    public int Out { get; }
    public Tensor Weight { get; }
    public Tensor Bias { get; }

    /// <summary>A new tensor [M, Out] = epilogue(x·Wᵀ + b) for x [M, In].</summary>
    public Tensor Forward(Tensor x, GemmEpilogue epilogue = GemmEpilogue.None)
    {
        var y = _backend.Allocate(DType.F32, x.Dim(0), Out);
        try
        {
            _backend.Gemm(x, Weight, Bias, y, epilogue);
            return y;
        }
        catch
        {
            y.Dispose();
            throw;
        }
    }

    /// <summary>residual += (gate ⊙) (x·Wᵀ + b), fused into the GEMM's epilogue; no gate, one gate [Out] or one per row's set.</summary>
    public void AddTo(Tensor x, Tensor residual, Gate? gate = null)
    {
        if (gate?.PerSet is { } perSet) _backend.GemmGatedRows(x, Weight, Bias, residual, residual, gate.Base, perSet, gate.RowSets.Span);
        else _backend.Gemm(x, Weight, Bias, residual, gate is null ? GemmEpilogue.AddResidual : GemmEpilogue.GatedResidual, residual, gate?.Base);
    }
}
