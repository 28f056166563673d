using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Text;

/// <summary>
/// The UMT5 text encoder (transformers UMT5EncoderModel, the text encoder of Wan2.1):
/// x = embedding[ids]; per block: x += SelfAttention(RMSNorm(x)) with an unscaled softmax and the block's own
/// bidirectional relative-position bias, then x += wo(gelu_tanh(wi_0·n) ⊙ wi_1·n) with n = RMSNorm(x);
/// finally RMSNorm(x). Weights keep their stored dtype (bf16 stays bf16; kernels convert).
/// Dispose releases the weights (call it once the prompts are encoded to free device memory).
/// </summary>
public sealed class Umt5Encoder : IDisposable
{
    private readonly IBackend _backend;
    private readonly ITensorSource _checkpoint;
    private readonly WeightSet _weights;
    private readonly Tensor _embedding;
    private readonly Umt5Block[] _blocks;
    private readonly Tensor _finalNorm;
    private bool _disposed;

    public Umt5Config Config { get; }

    private Umt5Encoder(Umt5Config config, IBackend backend, ITensorSource checkpoint)
    {
        Config = config;
        _backend = backend;
        _checkpoint = checkpoint;
        _weights = new WeightSet(checkpoint, backend);
        try
        {
            _embedding = TakeEmbedding(_weights, config);
            _blocks = new Umt5Block[config.NumLayers];
            for (int i = 0; i < config.NumLayers; i++)
                _blocks[i] = new Umt5Block(_weights, $"encoder.block.{i}", config, backend);
            _finalNorm = _weights.Take("encoder.final_layer_norm.weight", config.DModel);
            _weights.EnsureAllBound();
        }
        catch
        {
            _weights.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads the encoder from a transformers folder (config.json and safetensors weights, one file or a sharded
    /// index) or a single file in Hugging Face UMT5EncoderModel names (ComfyUI's umt5_xxl_*.safetensors, maybe
    /// under a prefix) or llama.cpp's (.gguf), its sizes inferred from the shapes.
    /// </summary>
    public static Umt5Encoder Load(string path, IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(backend);
        if (!Directory.Exists(path) && !File.Exists(path)) throw new ModelLoadException($"{path}: text encoder folder or file not found");
        var (checkpoint, config) = WanComponents.TextEncoder(path);
        try
        {
            return new Umt5Encoder(config, backend, checkpoint);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>Encodes one sequence of real tokens (no padding): a new device tensor [ids.Length, d_model].</summary>
    public Tensor Encode(ReadOnlySpan<int> ids)
    {
        int[] idArray = ids.ToArray();
        return Forward(idArray, sequences: 1, length: idArray.Length, validLengths: null);
    }

    /// <summary>
    /// What the Wan pipeline feeds the transformer: <see cref="Encode"/> of the real tokens, then zero rows up
    /// to <paramref name="paddedLength"/> → a new device tensor [paddedLength, d_model].
    /// </summary>
    public Tensor EncodePadded(ReadOnlySpan<int> ids, int paddedLength = 512)
    {
        if (ids.Length > paddedLength)
            throw new ArgumentOutOfRangeException(nameof(paddedLength), $"{ids.Length} ids do not fit in {paddedLength} rows");
        using var real = Encode(ids);
        var result = _backend.Allocate(DType.F32, paddedLength, Config.DModel);
        try
        {
            _backend.Copy(real, result.Slice(0, 0, ids.Length));
            if (paddedLength > ids.Length)
            {
                using var zeros = Tensor.ZerosHost(DType.F32, paddedLength - ids.Length, Config.DModel);
                using var deviceZeros = _backend.ToDevice(zeros);
                _backend.Copy(deviceZeros, result.Slice(0, ids.Length, paddedLength - ids.Length));
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <see cref="EncodePadded(ReadOnlySpan{int}, int)"/> of several prompts in one pass: their ids padded to the longest
    /// (padding keys masked out, as <see cref="EncodeBatch"/>), each prompt's real rows then zero rows up to
    /// <paramref name="paddedLength"/>. Returns a new device tensor [paddedLength, d_model] per prompt, in order.
    /// </summary>
    public Tensor[] EncodePadded(IReadOnlyList<int[]> ids, int paddedLength = 512)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.Count == 0) throw new ArgumentException("no prompts to encode", nameof(ids));
        for (int b = 0; b < ids.Count; b++)
        {
            if (ids[b] is null || ids[b].Length == 0) throw new ArgumentException($"prompt {b} has no token ids", nameof(ids));
            if (ids[b].Length > paddedLength)
                throw new ArgumentOutOfRangeException(nameof(paddedLength), $"prompt {b}: {ids[b].Length} ids do not fit in {paddedLength} rows");
        }
        if (ids.Count == 1) return [EncodePadded(ids[0], paddedLength)];
        int length = ids.Max(row => row.Length);
        var flat = new int[ids.Count * length]; // pad id 0 beyond each prompt (masked)
        for (int b = 0; b < ids.Count; b++) ids[b].CopyTo(flat, b * length);
        using var packed = Forward(flat, ids.Count, length, ids.Select(row => row.Length).ToArray());
        using var zeros = Tensor.ZerosHost(DType.F32, paddedLength, Config.DModel);
        var results = new List<Tensor>(ids.Count);
        try
        {
            for (int b = 0; b < ids.Count; b++)
            {
                var result = _backend.ToDevice(zeros);
                results.Add(result);
                _backend.Copy(packed.Slice(0, b * length, ids[b].Length), result.Slice(0, 0, ids[b].Length));
            }
            return results.ToArray();
        }
        catch
        {
            foreach (var r in results) r.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Encodes a batch of equal-length rows <paramref name="ids"/> [B, L] where row b's first
    /// <paramref name="validLengths"/>[b] tokens are real and the rest padding (HF attention_mask): padding
    /// keys are masked out. Returns a new device tensor [B, L, d_model]; rows past a sequence's valid length
    /// are computed but meaningless (the pipeline discards them).
    /// </summary>
    public Tensor EncodeBatch(int[][] ids, int[] validLengths)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(validLengths);
        if (ids.Length == 0) throw new ArgumentException("the batch is empty", nameof(ids));
        if (validLengths.Length != ids.Length)
            throw new ArgumentException($"{validLengths.Length} valid lengths for {ids.Length} rows", nameof(validLengths));
        int length = ids[0].Length;
        for (int b = 0; b < ids.Length; b++)
        {
            if (ids[b].Length != length)
                throw new ArgumentException($"row {b} has {ids[b].Length} ids, row 0 has {length}: pad rows to one length", nameof(ids));
            if (validLengths[b] < 1 || validLengths[b] > length)
                throw new ArgumentOutOfRangeException(nameof(validLengths), $"row {b}: valid length {validLengths[b]} outside [1, {length}]");
        }
        var flat = ids.SelectMany(row => row).ToArray();
        using var packed = Forward(flat, ids.Length, length, validLengths);
        var result = _backend.Allocate(DType.F32, ids.Length, length, Config.DModel);
        try
        {
            _backend.Copy(packed.Reshape(ids.Length, length, Config.DModel), result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Runs the encoder on <paramref name="sequences"/> packed sequences of <paramref name="length"/> tokens each.</summary>
    private Tensor Forward(int[] ids, int sequences, int length, int[]? validLengths)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (length == 0) throw new ArgumentException("no token ids to encode", nameof(ids));
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)Config.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {ids[i]} at position {i} is outside the vocabulary [0, {Config.VocabSize})");

        int[]? offsets = sequences == 1 ? null : Enumerable.Range(0, sequences + 1).Select(s => s * length).ToArray();
        var attention = new AttentionShape(length, offsets, validLengths, RelativePosition.Buckets(length, Config.RelativeBuckets, Config.RelativeMaxDistance));

        var x = _backend.Allocate(DType.F32, ids.Length, Config.DModel);
        try
        {
            _backend.Embedding(ids, _embedding, x);
            foreach (var block in _blocks) block.Forward(x, attention);
            _backend.RmsNorm(x, _finalNorm, Config.LayerNormEpsilon, x);
            return x;
        }
        catch
        {
            x.Dispose();
            throw;
        }
    }

    private static Tensor TakeEmbedding(WeightSet weights, Umt5Config config)
    {
        // transformers saves the tied embedding as shared.weight; some exports keep encoder.embed_tokens.weight.
        const string shared = "shared.weight", alias = "encoder.embed_tokens.weight";
        if (weights.Contains(shared))
        {
            var table = weights.Take(shared, config.VocabSize, config.DModel);
            // A tied duplicate is bound (so it is not reported as unexpected) and its device copy freed at once.
            if (weights.Contains(alias)) weights.Take(alias, config.VocabSize, config.DModel).Dispose();
            return table;
        }
        return weights.Take(alias, config.VocabSize, config.DModel);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _weights.Dispose();
        _checkpoint.Dispose();
    }
}

/// <summary>How the packed tokens form sequences, shared by every layer of one forward pass.</summary>
internal sealed record AttentionShape(int Length, int[]? Offsets, int[]? ValidLengths, int[] Buckets);

/// <summary>T5's bidirectional relative-position buckets.</summary>
public static class RelativePosition
{
    /// <summary>
    /// Bucket of relative position rp = key − query: half the buckets per sign (rp > 0 in the upper half);
    /// |rp| below buckets/4 is its own bucket, larger distances share logarithmic buckets up to maxDistance.
    /// </summary>
    public static int Bucket(int relativePosition, int numBuckets, int maxDistance)
    {
        int half = numBuckets / 2;
        int bucket = relativePosition > 0 ? half : 0;
        int distance = Math.Abs(relativePosition);
        int maxExact = half / 2;
        if (distance < maxExact) return bucket + distance;
        int large = maxExact + (int)(Math.Log(distance / (double)maxExact) / Math.Log(maxDistance / (double)maxExact) * (half - maxExact));
        return bucket + Math.Min(large, half - 1);
    }

    /// <summary>Buckets of rp = −(L−1) … L−1 at index rp + L − 1 (the layout of AttentionOptions.RelativeBias).</summary>
    public static int[] Buckets(int length, int numBuckets, int maxDistance)
    {
        var buckets = new int[2 * length - 1];
        for (int i = 0; i < buckets.Length; i++) buckets[i] = Bucket(i - (length - 1), numBuckets, maxDistance);
        return buckets;
    }
}

/// <summary>One encoder block: self-attention sub-layer then gated-GELU feed-forward sub-layer, both pre-norm residual.</summary>
internal sealed class Umt5Block
{
    private readonly Umt5SelfAttention _attention;
    private readonly Umt5FeedForward _feedForward;

    public Umt5Block(WeightSet weights, string prefix, Umt5Config config, IBackend backend)
    {
        _attention = new Umt5SelfAttention(weights, prefix + ".layer.0", config, backend);
        _feedForward = new Umt5FeedForward(weights, prefix + ".layer.1", config, backend);
    }

    public void Forward(Tensor x, AttentionShape shape)
    {
        _attention.Forward(x, shape);
        _feedForward.Forward(x);
    }
}

/// <summary>x += o(Attention(q, k, v) + relative bias), q/k/v/o without bias, no 1/√d scaling (T5).</summary>
internal sealed class Umt5SelfAttention
{
    private readonly IBackend _backend;
    private readonly Umt5Config _config;
    private readonly Tensor _norm;
    private readonly Weight _q, _k, _v, _o;
    private readonly float[] _relativeBias; // [buckets, heads] on the host: the per-call bias table is built from it

    public Umt5SelfAttention(WeightSet weights, string prefix, Umt5Config config, IBackend backend)
    {
        _backend = backend;
        _config = config;
        int d = config.DModel, inner = config.InnerDim;
        _norm = weights.Take(prefix + ".layer_norm.weight", d);
        _q = weights.TakeWeight(prefix + ".SelfAttention.q.weight", inner, d);
        _k = weights.TakeWeight(prefix + ".SelfAttention.k.weight", inner, d);
        _v = weights.TakeWeight(prefix + ".SelfAttention.v.weight", inner, d);
        _o = weights.TakeWeight(prefix + ".SelfAttention.o.weight", d, inner);
        var bias = weights.Take(prefix + ".SelfAttention.relative_attention_bias.weight", config.RelativeBuckets, config.NumHeads);
        using var host = backend.ToHost(bias);
        _relativeBias = host.ToFloatArray();
    }

    public void Forward(Tensor x, AttentionShape shape)
    {
        int n = x.Dim(0), heads = _config.NumHeads, dkv = _config.DKv, inner = _config.InnerDim;
        using var normed = _backend.Allocate(DType.F32, n, _config.DModel);
        _backend.RmsNorm(x, _norm, _config.LayerNormEpsilon, normed);
        using var q = _backend.Allocate(DType.F32, n, inner);
        using var k = _backend.Allocate(DType.F32, n, inner);
        using var v = _backend.Allocate(DType.F32, n, inner);
        _backend.Gemm(normed, _q, null, q);
        _backend.Gemm(normed, _k, null, k);
        _backend.Gemm(normed, _v, null, v);

        using var hostTable = BiasTable(shape);
        using var biasTable = _backend.ToDevice(hostTable);
        using var context = _backend.Allocate(DType.F32, n, inner);
        _backend.Attention(q.Reshape(n, heads, dkv), k.Reshape(n, heads, dkv), v.Reshape(n, heads, dkv), context.Reshape(n, heads, dkv),
            new AttentionOptions
            {
                Scale = 1f,
                QueryOffsets = shape.Offsets,
                KeyOffsets = shape.Offsets,
                KeyValidLengths = shape.ValidLengths,
                RelativeBias = biasTable,
                RelativeBiasCenter = shape.Length - 1,
            });
        _backend.Gemm(context, _o, null, x, GemmEpilogue.AddResidual, residual: x);
    }

    /// <summary>Host F32 [H, 2L−1]: entry (h, rp + L − 1) = bias weight [bucket(rp), h].</summary>
    private Tensor BiasTable(AttentionShape shape)
    {
        int heads = _config.NumHeads, width = shape.Buckets.Length;
        var table = new float[heads * width];
        for (int h = 0; h < heads; h++)
            for (int r = 0; r < width; r++)
                table[h * width + r] = _relativeBias[shape.Buckets[r] * heads + h];
        return Tensor.FromArray(table, [heads, width]);
    }
}

/// <summary>x += wo(gelu_tanh(wi_0·n) ⊙ (wi_1·n)) with n = RMSNorm(x).</summary>
internal sealed class Umt5FeedForward
{
    private readonly IBackend _backend;
    private readonly Umt5Config _config;
    private readonly Tensor _norm;
    private readonly Weight _wi0, _wi1, _wo;

    public Umt5FeedForward(WeightSet weights, string prefix, Umt5Config config, IBackend backend)
    {
        _backend = backend;
        _config = config;
        _norm = weights.Take(prefix + ".layer_norm.weight", config.DModel);
        _wi0 = weights.TakeWeight(prefix + ".DenseReluDense.wi_0.weight", config.DFf, config.DModel);
        _wi1 = weights.TakeWeight(prefix + ".DenseReluDense.wi_1.weight", config.DFf, config.DModel);
        _wo = weights.TakeWeight(prefix + ".DenseReluDense.wo.weight", config.DModel, config.DFf);
    }

    public void Forward(Tensor x)
    {
        int n = x.Dim(0);
        using var normed = _backend.Allocate(DType.F32, n, _config.DModel);
        _backend.RmsNorm(x, _norm, _config.LayerNormEpsilon, normed);
        using var gate = _backend.Allocate(DType.F32, n, _config.DFf);
        using var linear = _backend.Allocate(DType.F32, n, _config.DFf);
        _backend.Gemm(normed, _wi0, null, gate, GemmEpilogue.GeluTanh);
        _backend.Gemm(normed, _wi1, null, linear);
        _backend.Mul(gate, linear, gate);
        _backend.Gemm(gate, _wo, null, x, GemmEpilogue.AddResidual, residual: x);
    }
}
