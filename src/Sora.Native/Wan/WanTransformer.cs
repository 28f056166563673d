using Sora.Native.Loading;
using Sora.Native.Wan.Transformer;
using Sora.Runtime;

namespace Sora.Native.Wan;

/// <summary>
/// The Wan2.1 diffusion transformer (diffusers <c>WanTransformer3DModel</c>, text-to-video): patch embedding →
/// timestep and text conditioning → blocks (AdaLN self-attention with 3-axis RoPE, cross-attention to the text,
/// gated FFN) → modulated output norm → proj_out → unpatchify. Predicts the flow velocity. The timestep is one
/// scalar or one per token (Wan2.2 TI2V and image to video: known frames at 0, the rest at t).
/// Weights keep their stored dtype; activations are f32. Not thread-safe (it caches RoPE tables).
/// </summary>
public sealed class WanTransformer : IDisposable
{
    private readonly IBackend _backend;
    private readonly ITensorSource _checkpoint;
    private readonly WeightSet _weights;
    private readonly PatchEmbedding _patchEmbedding;
    private readonly TimestepEmbedder _timeEmbedder;
    private readonly TextEmbedder _textEmbedder;
    private readonly WanTransformerBlock[] _blocks;
    private readonly OutputHead _head;
    private readonly Dictionary<(int, int, int), RotaryTables> _rope = new();
    private RotaryTables? _packedRope;
    private (int Frames, int Rows, int Columns)[] _packedGrids = [];
    private bool _disposed;

    private WanTransformer(WanTransformerConfig config, IBackend backend, ITensorSource checkpoint, WeightSet weights)
    {
        Config = config;
        _backend = backend;
        _checkpoint = checkpoint;
        _weights = weights;
        _patchEmbedding = new PatchEmbedding(weights, config, backend);
        _timeEmbedder = new TimestepEmbedder(weights, "condition_embedder", config, backend);
        _textEmbedder = new TextEmbedder(weights, "condition_embedder.text_embedder", config, backend);
        _blocks = new WanTransformerBlock[config.NumLayers];
        for (int i = 0; i < config.NumLayers; i++) _blocks[i] = new WanTransformerBlock(weights, $"blocks.{i}", config, backend);
        _head = new OutputHead(weights, config, backend);
        weights.EnsureAllBound();
    }

    public WanTransformerConfig Config { get; }

    /// <summary>How each LoRA given to <see cref="Load"/> met the model (layers touched, keys skipped).</summary>
    public IReadOnlyList<LoraSummary> Loras { get; private init; } = [];

    /// <summary>
    /// Loads a transformer onto the backend from a diffusers folder (config.json and safetensors weights, one file
    /// or a sharded index), or a single file: the Wan repository's layout (with or without the
    /// model.diffusion_model. prefix) or diffusers', .safetensors or .gguf, its architecture inferred from the
    /// shapes. <paramref name="configPath"/>: an explicit config (original Wan keys, or diffusers') that overrides
    /// the folder's and must agree with the shapes. <paramref name="loras"/> are merged into the weights.
    /// </summary>
    public static WanTransformer Load(string path, IBackend backend, string? configPath = null, IReadOnlyList<LoraSpec>? loras = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(backend);
        if (!Directory.Exists(path) && !File.Exists(path)) throw new ModelLoadException($"{path}: transformer folder or file not found");
        var (opened, config) = WanComponents.Transformer(path, configPath);
        var (source, summaries) = WanComponents.WithLoras(opened, loras, WanTransformerNames.Table, backend);
        var weights = new WeightSet(source, backend);
        try
        {
            return new WanTransformer(config, backend, source, weights) { Loras = summaries };
        }
        catch
        {
            weights.Dispose();
            source.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The velocity for latents [C, T, H, W] at <paramref name="timestep"/> (0..1000 scale) given text embeddings
    /// [N, text_dim] (the pipeline passes 512 rows: real tokens, then zero rows). Returns a new tensor [C_out, T, H, W].
    /// </summary>
    public Tensor Forward(Tensor latents, float timestep, Tensor textEmbeds)
    {
        using var text = EncodeText(textEmbeds);
        using var batched = Forward(latents, timestep, text);
        return Unbatched(batched);
    }

    /// <summary>
    /// The velocity for latents [C, T, H, W] with a timestep per post-patch token (T'·H'·W' values, frame-major),
    /// given text embeddings [N, text_dim]. Returns a new tensor [C_out, T, H, W].
    /// </summary>
    public Tensor Forward(Tensor latents, float[] tokenTimesteps, Tensor textEmbeds)
    {
        using var text = EncodeText(textEmbeds);
        using var batched = Forward(latents, tokenTimesteps, text);
        return Unbatched(batched);
    }

    private Tensor Unbatched(Tensor batched)
    {
        var result = _backend.Allocate(DType.F32, batched.Shape[1..]);
        _backend.Copy(batched.Reshape(batched.Shape[1..]), result);
        return result;
    }

    /// <summary>
    /// Projects one or more prompts' embeddings [N_b, text_dim] once: the text embedder and every block's
    /// cross-attention keys and values depend only on the prompt, so a denoising loop reuses them at every step.
    /// </summary>
    public WanTextContext EncodeText(params Tensor[] textEmbeds)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(textEmbeds);
        if (textEmbeds.Length == 0) throw new ArgumentException("at least one text embedding is needed", nameof(textEmbeds));
        var offsets = new int[textEmbeds.Length + 1];
        for (int b = 0; b < textEmbeds.Length; b++)
        {
            var e = textEmbeds[b] ?? throw new ArgumentNullException(nameof(textEmbeds), $"text embedding {b} is null");
            if (e.Rank != 2 || e.Dim(1) != Config.TextDim || e.Dim(0) < 1)
                throw new ArgumentException($"text embedding {b} must be [N≥1, text_dim={Config.TextDim}], got {e.ShapeString}", nameof(textEmbeds));
            if (e.DType != DType.F32) throw new ArgumentException($"text embedding {b} must be F32, got {DTypes.SafetensorsName(e.DType)}", nameof(textEmbeds));
            offsets[b + 1] = offsets[b] + e.Dim(0);
        }

        using var packed = _backend.Allocate(DType.F32, offsets[^1], Config.TextDim);
        for (int b = 0; b < textEmbeds.Length; b++) _backend.Copy(textEmbeds[b], packed.Slice(0, offsets[b], offsets[b + 1] - offsets[b]));
        using var context = _textEmbedder.Forward(packed);
        var keys = new List<TextKeys>(_blocks.Length);
        try
        {
            foreach (var block in _blocks)
            {
                var (k, v) = block.CrossAttention.ProjectText(context);
                keys.Add(new TextKeys(k, v));
            }
            return new WanTextContext(keys, textEmbeds.Length == 1 ? null : offsets);
        }
        catch
        {
            foreach (var k in keys) k.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The velocity of the same latents [C, T, H, W] under each of the context's B prompts, computed as one packed
    /// batch (classifier-free guidance runs the conditional and unconditional pass together). Returns a new
    /// tensor [B, C_out, T, H, W] in the context's prompt order.
    /// </summary>
    public Tensor Forward(Tensor latents, float timestep, WanTextContext text)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(latents);
        ArgumentNullException.ThrowIfNull(text);
        if (!float.IsFinite(timestep)) throw new ArgumentOutOfRangeException(nameof(timestep), timestep, "timestep must be finite");
        return Run(latents, [timestep], tokenSets: null, text);
    }

    /// <summary>
    /// Like the scalar overload, with a timestep per post-patch token: <paramref name="tokenTimesteps"/> holds
    /// T'·H'·W' values in token order (frame, row, column), shared by all B prompts of the context. Each distinct
    /// value is embedded once and every token selects its modulation inside the norm and gate kernels; when all
    /// tokens share one value this is exactly the scalar overload. Returns a new tensor [B, C_out, T, H, W].
    /// </summary>
    public Tensor Forward(Tensor latents, float[] tokenTimesteps, WanTextContext text)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(latents);
        ArgumentNullException.ThrowIfNull(tokenTimesteps);
        ArgumentNullException.ThrowIfNull(text);
        var (frames, rows, columns) = Grid(latents);
        int tokens = frames * rows * columns;
        if (tokenTimesteps.Length != tokens)
            throw new ArgumentException($"tokenTimesteps has {tokenTimesteps.Length} values, expected one per post-patch token: " +
                $"T'·H'·W' = {frames}·{rows}·{columns} = {tokens} for latents {latents.ShapeString}", nameof(tokenTimesteps));
        var distinct = new List<float>();
        var setOf = new Dictionary<float, int>();
        var tokenSets = new int[tokens];
        for (int i = 0; i < tokens; i++)
        {
            float t = tokenTimesteps[i];
            if (!float.IsFinite(t)) throw new ArgumentOutOfRangeException(nameof(tokenTimesteps), t, $"tokenTimesteps[{i}] = {t} must be finite");
            if (!setOf.TryGetValue(t, out int set))
            {
                setOf[t] = set = distinct.Count;
                distinct.Add(t);
            }
            tokenSets[i] = set;
        }
        return distinct.Count == 1 ? Run(latents, [distinct[0]], tokenSets: null, text) : Run(latents, distinct.ToArray(), tokenSets, text);
    }

    /// <summary>
    /// The velocities of several sequences in one pass (patch n' pack): sequence i runs under prompt i of
    /// <paramref name="text"/> (so text.Count == sequences.Count; a guided request gives two sequences, its latents
    /// under the prompt and under the negative prompt), each with its own grid (its own RoPE positions) and its own
    /// per-token timesteps; its tokens attend only to each other and to its prompt. Every distinct timestep of the
    /// pass is embedded once. Returns one new tensor [C_out, T, H, W] per sequence, in order.
    /// </summary>
    public Tensor[] Forward(IReadOnlyList<PackedSequence> sequences, WanTextContext text)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentNullException.ThrowIfNull(text);
        if (sequences.Count == 0) throw new ArgumentException("at least one sequence is needed", nameof(sequences));
        if (sequences.Count != text.Count)
            throw new ArgumentException($"{sequences.Count} sequences but {text.Count} prompts: sequence i runs under prompt i", nameof(sequences));
        var distinct = new List<float>();
        var setOf = new Dictionary<float, int>();
        var rowSets = new List<int>();
        for (int s = 0; s < sequences.Count; s++)
        {
            var (latents, timesteps) = sequences[s] ?? throw new ArgumentNullException(nameof(sequences), $"sequence {s} is null");
            var (frames, rows, columns) = Grid(latents);
            if (timesteps is null || timesteps.Length != frames * rows * columns)
                throw new ArgumentException($"sequence {s}: {timesteps?.Length ?? 0} timesteps for {frames * rows * columns} post-patch tokens of latents {latents.ShapeString}", nameof(sequences));
            foreach (float t in timesteps)
            {
                if (!float.IsFinite(t)) throw new ArgumentOutOfRangeException(nameof(sequences), t, $"sequence {s}: timestep {t} must be finite");
                if (!setOf.TryGetValue(t, out int set))
                {
                    setOf[t] = set = distinct.Count;
                    distinct.Add(t);
                }
                rowSets.Add(set);
            }
        }
        var latentsOf = sequences.Select(q => q.Latents).ToArray();
        using var projected = Project(latentsOf, distinct.ToArray(), distinct.Count == 1 ? null : rowSets.ToArray(), text);
        var outputs = new List<Tensor>(sequences.Count);
        try
        {
            int row = 0;
            foreach (var latents in latentsOf)
            {
                var (frames, rows, columns) = Grid(latents);
                int tokens = frames * rows * columns;
                var output = _backend.Allocate(DType.F32, [Config.OutChannels, .. latents.Shape[1..]]);
                outputs.Add(output);
                int[] p = Config.PatchSize;
                _backend.Unpatchify(projected.Slice(0, row, tokens), p[0], p[1], p[2], output);
                row += tokens;
            }
            return outputs.ToArray();
        }
        catch
        {
            foreach (var o in outputs) o.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Joins several prompts' contexts into one (new key/value copies; the parts stay the caller's), in order:
    /// for a packed pass over requests that were encoded separately.
    /// </summary>
    public WanTextContext Concat(IReadOnlyList<WanTextContext> contexts)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(contexts);
        if (contexts.Count == 0) throw new ArgumentException("at least one context is needed", nameof(contexts));
        var lengths = contexts.SelectMany(c => c.Lengths()).ToArray();
        var offsets = new int[lengths.Length + 1];
        for (int i = 0; i < lengths.Length; i++) offsets[i + 1] = offsets[i] + lengths[i];
        var keys = new List<TextKeys>(_blocks.Length);
        try
        {
            for (int block = 0; block < _blocks.Length; block++)
            {
                var k = _backend.Allocate(DType.F32, offsets[^1], Config.Dim);
                var v = _backend.Allocate(DType.F32, offsets[^1], Config.Dim);
                keys.Add(new TextKeys(k, v));
                int row = 0;
                foreach (var c in contexts)
                {
                    var part = c.Block(block);
                    _backend.Copy(part.Keys, k.Slice(0, row, part.Keys.Dim(0)));
                    _backend.Copy(part.Values, v.Slice(0, row, part.Values.Dim(0)));
                    row += part.Keys.Dim(0);
                }
            }
            return new WanTextContext(keys, lengths.Length == 1 ? null : offsets);
        }
        catch
        {
            foreach (var k in keys) k.Dispose();
            throw;
        }
    }

    /// <summary>The forward pass of the same latents under each of the B prompts, for G timesteps; tokenSets gives each token's (null: G = 1).</summary>
    private Tensor Run(Tensor latents, float[] timesteps, int[]? tokenSets, WanTextContext text)
    {
        var (frames, rows, columns) = Grid(latents);
        int batch = text.Count, tokens = frames * rows * columns;
        // The B samples of the packed batch repeat the token pattern.
        int[]? rowSets = tokenSets is null ? null : Enumerable.Repeat(tokenSets, batch).SelectMany(s => s).ToArray();
        using var projected = Project(Enumerable.Repeat(latents, batch).ToArray(), timesteps, rowSets, text);
        int[] p = Config.PatchSize;
        var output = _backend.Allocate(DType.F32, batch, Config.OutChannels, latents.Dim(1), latents.Dim(2), latents.Dim(3));
        try
        {
            for (int b = 0; b < batch; b++)
                _backend.Unpatchify(projected.Slice(0, b * tokens, tokens), p[0], p[1], p[2],
                    output.Slice(0, b, 1).Reshape(output.Shape[1..]));
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Patch embedding of every sequence (one GEMM), the blocks over all their tokens packed
    /// back to back, and the output head: a new tensor [Σ tokens, C_out·pt·ph·pw] with features (kt, kh, kw, c).
    /// </summary>
    private Tensor Project(Tensor[] latents, float[] timesteps, int[]? rowSets, WanTextContext text)
    {
        var grids = latents.Select(Grid).ToArray();
        var offsets = new int[latents.Length + 1];
        for (int s = 0; s < latents.Length; s++) offsets[s + 1] = offsets[s] + grids[s].Frames * grids[s].Rows * grids[s].Columns;
        var layout = new PackedLayout(latents.Length == 1 ? null : offsets, text.Offsets);
        bool oneGrid = grids.All(g => g == grids[0]);
        var rope = oneGrid ? Rope(grids[0].Frames, grids[0].Rows, grids[0].Columns) : PackedRope(grids, offsets[^1]);

        using var x = _backend.Allocate(DType.F32, offsets[^1], Config.Dim);
        _patchEmbedding.Forward(latents, x);

        using var time = _timeEmbedder.Forward(timesteps, rowSets);
        for (int i = 0; i < _blocks.Length; i++) _blocks[i].Forward(x, time, text.Block(i), rope, layout);
        return _head.Forward(x, time);
    }

    /// <summary>
    /// RoPE tables for sequences of different grids packed back to back: row r is its own sequence's position. The last
    /// one is kept (owned here) while the same grids keep coming: a continuous batch changes only when a job joins or leaves.
    /// </summary>
    private RotaryTables PackedRope((int Frames, int Rows, int Columns)[] grids, int totalRows)
    {
        if (_packedRope is { } kept && _packedGrids.SequenceEqual(grids)) return kept;
        _packedRope?.Dispose();
        _packedRope = null;
        _packedRope = NewPackedRope(grids, totalRows);
        _packedGrids = grids;
        return _packedRope;
    }

    private RotaryTables NewPackedRope((int Frames, int Rows, int Columns)[] grids, int totalRows)
    {
        int half = Config.AttentionHeadDim / 2;
        var cos = _backend.Allocate(DType.F32, totalRows, half);
        var sin = _backend.Allocate(DType.F32, totalRows, half);
        int row = 0;
        foreach (var (frames, rows, columns) in grids)
        {
            var part = Rope(frames, rows, columns);
            int n = part.Cos.Dim(0);
            _backend.Copy(part.Cos, cos.Slice(0, row, n));
            _backend.Copy(part.Sin, sin.Slice(0, row, n));
            row += n;
        }
        return new RotaryTables(cos, sin);
    }

    /// <summary>The post-patch grid (T', H', W') of latents, checked against the config.</summary>
    private (int Frames, int Rows, int Columns) Grid(Tensor latents)
    {
        int[] p = Config.PatchSize;
        if (latents.Rank != 4 || latents.Dim(0) != Config.InChannels)
            throw new ArgumentException($"latents must be [C={Config.InChannels}, T, H, W], got {latents.ShapeString}", nameof(latents));
        if (latents.DType != DType.F32) throw new ArgumentException($"latents must be F32, got {DTypes.SafetensorsName(latents.DType)}", nameof(latents));
        for (int a = 0; a < 3; a++)
        {
            int size = latents.Dim(a + 1);
            if (size < p[a] || size % p[a] != 0)
                throw new ArgumentException($"latents {latents.ShapeString}: axis {a + 1} ({size}) must be a positive multiple of the patch size {p[a]}", nameof(latents));
            if (size / p[a] > Config.RopeMaxSeqLen)
                throw new ArgumentException($"latents {latents.ShapeString}: axis {a + 1} has {size / p[a]} patches, more than rope_max_seq_len = {Config.RopeMaxSeqLen}", nameof(latents));
        }
        return (latents.Dim(1) / p[0], latents.Dim(2) / p[1], latents.Dim(3) / p[2]);
    }

    private RotaryTables Rope(int frames, int rows, int columns)
    {
        if (!_rope.TryGetValue((frames, rows, columns), out var tables))
        {
            tables = new RotaryTables(_backend, Config.AttentionHeadDim, frames, rows, columns);
            _rope[(frames, rows, columns)] = tables;
        }
        return tables;
    }

    /// <summary>Frees the cached RoPE tables (made again on demand): what an idle server gives back.</summary>
    public void ReleaseCaches()
    {
        foreach (var t in _rope.Values) t.Dispose();
        _rope.Clear();
        _packedRope?.Dispose();
        _packedRope = null;
        _packedGrids = [];
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ReleaseCaches();
        _weights.Dispose();
        _checkpoint.Dispose();
    }
}

/// <summary>One sequence of a packed pass: latents [C, T, H, W] and one timestep per post-patch token (frame-major).</summary>
public sealed record PackedSequence(Tensor Latents, float[] TokenTimesteps);

/// <summary>
/// Prompts projected for the transformer's cross-attention (see <see cref="WanTransformer.EncodeText"/>): one
/// key/value pair per block for all prompts packed back to back. Dispose to free them.
/// </summary>
public sealed class WanTextContext : IDisposable
{
    private readonly IReadOnlyList<TextKeys> _blocks;

    internal WanTextContext(IReadOnlyList<TextKeys> blocks, int[]? offsets)
    {
        _blocks = blocks;
        Offsets = offsets;
    }

    /// <summary>Number of prompts B.</summary>
    public int Count => Offsets is null ? 1 : Offsets.Length - 1;

    /// <summary>Cumulative row starts of the prompts (B+1 entries); null for a single prompt.</summary>
    internal int[]? Offsets { get; }

    /// <summary>The rows of each prompt.</summary>
    internal IEnumerable<int> Lengths()
        => Offsets is null ? [_blocks[0].Keys.Dim(0)] : Offsets.Skip(1).Select((end, i) => end - Offsets[i]);

    internal TextKeys Block(int index) => _blocks[index];

    public void Dispose()
    {
        foreach (var b in _blocks) b.Dispose();
    }
}
