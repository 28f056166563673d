using System.Diagnostics;
using Sora.Kernels.Cpu;
using Sora.Native.Loading;
using Sora.Native.Wan;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Xunit;
using Sora.Tests.Wan;
using Xunit.Abstractions;

namespace Sora.Tests.Kernels.Cpu;

/// <summary>
/// Measurement (opt-in: SORA_QUANT_MEMORY=1, a few minutes on two cores): a Wan2.1-1.3B-shaped transformer (dim 1536,
/// 30 layers, ffn 8960, text 4096) with generated weights, every linear weight quantised to Q4_K by ggml's reference
/// quantiser, bound by the real model classes through <see cref="WeightSet.TakeWeight"/>. Reports what its weights
/// hold in memory (f32 would be 5.7 GB) and checks it is at most 1.0 GB, then runs one forward pass on a small latent.
/// </summary>
public sealed class QuantizedTransformerMemoryTests(ITestOutputHelper output)
{
    private static readonly WanTransformerConfig Wan13B = new()
    {
        NumAttentionHeads = 12, AttentionHeadDim = 128, InChannels = 16, OutChannels = 16, TextDim = 4096, FreqDim = 256,
        FfnDim = 8960, NumLayers = 30, PatchSize = [1, 2, 2],
    };

    [OptInFact("SORA_QUANT_MEMORY")]
    public void Wan_1_3B_shaped_transformer_in_q4_K_keeps_its_weights_under_one_gigabyte()
    {
        using var backend = new CpuBackend(2);
        long before = Process.GetCurrentProcess().WorkingSet64, liveBefore = GC.GetTotalMemory(forceFullCollection: true);
        var clock = Stopwatch.StartNew();
        using var source = GeneratedSource.Wan(Wan13B, GgmlType.Q4_K);
        output.WriteLine($"generated and quantised {source.Parameters:N0} parameters in {clock.Elapsed.TotalSeconds:F0} s");
        var weights = new WeightSet(source, backend);
        var transformer = QuantizedTransformerChecks.Bind(Wan13B, weights, backend);
        try
        {
            // The blocks are managed arrays: the live heap after a full collection is what the weights keep (the working
            // set also holds the generator's freed float arrays until the runtime returns them).
            long live = GC.GetTotalMemory(forceFullCollection: true) - liveBefore;
            long resident = Process.GetCurrentProcess().WorkingSet64 - before;
            output.WriteLine($"weights: {source.StoredBytes:N0} B stored ({source.StoredBytes / 1e9:F3} GB; f32 would be {source.Parameters * 4 / 1e9:F2} GB); " +
                $"live managed heap grew {live / 1e9:F3} GB (blocks), process working set {resident / 1e9:F3} GB");
            Assert.True(source.StoredBytes <= 1_000_000_000, $"{source.StoredBytes:N0} B of weights");

            using var latents = Tensor.FromArray(OpTestKit.Random(16 * 1 * 16 * 16, 1), [16, 1, 16, 16]);
            using var text = Tensor.FromArray(OpTestKit.Random(32 * 4096, 2, 0.1f), [32, 4096]);
            clock.Restart();
            using var velocity = transformer.Forward(latents, 500f, text);
            output.WriteLine($"one forward pass (64 tokens, 32 text rows): {clock.Elapsed.TotalSeconds:F1} s");
            Assert.All(velocity.ToFloatArray(), v => Assert.True(float.IsFinite(v)));
        }
        finally
        {
            transformer.Dispose();
        }
    }

    /// <summary>Generated weights in the diffusers layout: linear weights as ggml blocks, everything else dense F32.</summary>
    private sealed class GeneratedSource : ITensorSource, IQuantizedTensorSource
    {
        private readonly Dictionary<string, int[]> _shapes = new(StringComparer.Ordinal);
        private readonly Dictionary<string, byte[]> _blocks = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Tensor> _dense = new(StringComparer.Ordinal);
        private GgmlType _type;

        public long Parameters => _shapes.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b));
        public long StoredBytes => _blocks.Values.Sum(b => (long)b.Length) + _dense.Values.Sum(t => t.ElementCount * 4);

        public static GeneratedSource Wan(WanTransformerConfig c, GgmlType type)
        {
            var s = new GeneratedSource { _type = type };
            int d = c.NumAttentionHeads * c.AttentionHeadDim;
            void Linear(string name, int o, int i)
            {
                s._shapes[name + ".weight"] = [o, i];
                s._shapes[name + ".bias"] = [o];
            }
            Linear("condition_embedder.time_embedder.linear_1", d, c.FreqDim);
            Linear("condition_embedder.time_embedder.linear_2", d, d);
            Linear("condition_embedder.time_proj", 6 * d, d);
            Linear("condition_embedder.text_embedder.linear_1", d, c.TextDim);
            Linear("condition_embedder.text_embedder.linear_2", d, d);
            s._shapes["patch_embedding.weight"] = [d, c.InChannels, .. c.PatchSize];
            s._shapes["patch_embedding.bias"] = [d];
            for (int b = 0; b < c.NumLayers; b++)
            {
                string p = $"blocks.{b}";
                foreach (var attn in new[] { "attn1", "attn2" })
                {
                    foreach (var proj in new[] { "to_q", "to_k", "to_v", "to_out.0" }) Linear($"{p}.{attn}.{proj}", d, d);
                    s._shapes[$"{p}.{attn}.norm_q.weight"] = [d];
                    s._shapes[$"{p}.{attn}.norm_k.weight"] = [d];
                }
                Linear($"{p}.ffn.net.0.proj", c.FfnDim, d);
                Linear($"{p}.ffn.net.2", d, c.FfnDim);
                s._shapes[$"{p}.norm2.weight"] = [d];
                s._shapes[$"{p}.norm2.bias"] = [d];
                s._shapes[$"{p}.scale_shift_table"] = [1, 6, d];
            }
            Linear("proj_out", c.OutChannels * c.PatchVolume, d);
            s._shapes["scale_shift_table"] = [1, 2, d];
            var names = s._shapes.Keys.ToArray();
            var blocks = new byte[names.Length][];
            var dense = new float[names.Length][];
            Parallel.For(0, names.Length, new ParallelOptions { MaxDegreeOfParallelism = 2 }, i =>
            {
                var shape = s._shapes[names[i]];
                long count = shape.Aggregate(1L, (a, b) => a * b);
                // Weight-like spread (std ~0.03); norm weights around 1.
                float[] values = OpTestKit.Random((int)count, i + 1, 0.05f);
                if (names[i].Contains("norm")) for (int j = 0; j < values.Length; j++) values[j] += 1f;
                bool quantise = shape.Length == 2 && names[i].EndsWith(".weight", StringComparison.Ordinal) && !names[i].Contains("scale_shift");
                if (!quantise)
                {
                    dense[i] = values;
                    return;
                }
                blocks[i] = new byte[GgmlTypes.ByteCount(type, count)];
                GgmlQuantize.Blocks(type, values, blocks[i]);
            });
            for (int i = 0; i < names.Length; i++)
                if (blocks[i] is { } b) s._blocks[names[i]] = b;
                else s._dense[names[i]] = Tensor.FromArray(dense[i], s._shapes[names[i]]);
            return s;
        }

        public string Source => "generated:wan-1.3b-" + GgmlTypes.Name(_type);
        public IEnumerable<string> Names => _shapes.Keys;
        public bool Contains(string name) => _shapes.ContainsKey(name);
        public (DType DType, int[] Shape) Describe(string name) => (DType.F32, _shapes[name]);
        public Tensor Get(string name) => _dense[name];
        public string FileOf(string name) => Source;

        public bool TryGetBlocks(string name, out GgmlType type, out ReadOnlyMemory<byte> blocks)
        {
            bool found = _blocks.TryGetValue(name, out var b);
            (type, blocks) = (_type, b);
            return found;
        }

        public void Dispose()
        {
            foreach (var t in _dense.Values) t.Dispose();
        }
    }
}
