using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Wan.Transformer;

/// <summary>Output: (shift, scale) = scale_shift_table [1,2,D] + temb (not timestep_proj; per token when the timestep is); proj_out(LN(x)·(1+scale)+shift).</summary>
internal sealed class OutputHead
{
    private readonly IBackend _backend;
    private readonly int _dim;
    private readonly float _eps;
    private readonly Tensor _scaleShiftTable;
    private readonly Linear _proj;

    public OutputHead(WeightSet weights, WanTransformerConfig config, IBackend backend)
    {
        _backend = backend;
        _dim = config.Dim;
        _eps = config.Eps;
        _scaleShiftTable = weights.TakeF32("scale_shift_table", 1, 2, _dim);
        _proj = new Linear(weights, "proj_out", _dim, config.OutChannels * config.PatchVolume, backend);
    }

    /// <summary>A new tensor [rows, C_out·pt·ph·pw] with features (kt, kh, kw, c), for x [rows, D].</summary>
    public Tensor Forward(Tensor x, TimestepConditioning time)
    {
        using var modulation = Modulation.Head(_backend, _scaleShiftTable.Reshape(2, _dim), time, _dim);
        using var normed = _backend.Allocate(DType.F32, x.Dim(0), _dim);
        modulation.AdaLn(x, shift: 0, scale: 1, _eps, normed);
        return _proj.Forward(normed);
    }
}

/// <summary>patch_embedding: a Conv3d with kernel = stride = patch, computed as Patchify + GEMM with the weight viewed [D, C·pt·ph·pw].</summary>
internal sealed class PatchEmbedding
{
    private readonly IBackend _backend;
    private readonly int[] _patch;
    private readonly Tensor _weight, _bias;

    public PatchEmbedding(WeightSet weights, WanTransformerConfig config, IBackend backend)
    {
        _backend = backend;
        _patch = config.PatchSize;
        int d = config.Dim;
        var conv = weights.Take("patch_embedding.weight", d, config.InChannels, _patch[0], _patch[1], _patch[2]);
        // Patchify orders features (c, kt, kh, kw): exactly the flattened layout of the conv weight's last four axes.
        _weight = conv.Reshape(d, config.InChannels * config.PatchVolume);
        _bias = weights.Take("patch_embedding.bias", d);
    }

    /// <summary>
    /// The tokens of each latents [C, T, H, W] (ordered frame, row, column) packed back to back into
    /// <paramref name="x"/> [Σ T'·H'·W', D]: every sequence patchified into one matrix, then one GEMM.
    /// </summary>
    public void Forward(IReadOnlyList<Tensor> latents, Tensor x)
    {
        using var patches = _backend.Allocate(DType.F32, x.Dim(0), _weight.Dim(1));
        int row = 0;
        foreach (var l in latents)
        {
            int tokens = Tokens(l);
            _backend.Patchify(l, _patch[0], _patch[1], _patch[2], patches.Slice(0, row, tokens));
            row += tokens;
        }
        _backend.Gemm(patches, _weight, _bias, x);
    }

    private int Tokens(Tensor latents) => latents.Dim(1) / _patch[0] * (latents.Dim(2) / _patch[1]) * (latents.Dim(3) / _patch[2]);
}
