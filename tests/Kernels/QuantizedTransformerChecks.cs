using System.Reflection;
using Sora.Native.Loading;
using Sora.Native.Wan;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Sora.Runtime.Safetensors;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels;

/// <summary>
/// The whole wan-small transformer (tests/fixtures/wan-small) with every linear weight stored as ggml blocks and taken
/// through <see cref="WeightSet.TakeWeight"/>, against the same model bound to dense f32 weights holding the values
/// those blocks stand for (ggml's dequantisation): the quantised path (handles, Linear, every epilogue and the per-row
/// gates inside the model) must give the dense path's velocity. The dense path itself matches diffusers (tests/Wan).
/// </summary>
public static class QuantizedTransformerChecks
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "fixtures", "wan-small");

    public static void MatchesTheDenseModelOnTheExpandedValues(IBackend backend, GgmlType type)
    {
        using var checkpoint = SafetensorsCheckpoint.Open(Path.Combine(Dir, "model", "transformer"));
        using var quantised = new ConvertedSource(checkpoint, type, keepBlocks: true);
        using var expanded = new ConvertedSource(checkpoint, type, keepBlocks: false);
        // Every linear: 2 blocks × (8 attention + 2 FFN projections), 5 condition-embedder layers and proj_out.
        Assert.Equal(2 * 10 + 6, quantised.BlockCount);
        var config = WanTransformerConfig.Load(Path.Combine(Dir, "model", "transformer", "config.json"));
        using var inputs = SafetensorsFile.Open(Path.Combine(Dir, "transformer_case.safetensors"));
        var latents = inputs.Get("hidden_states").ToFloatArray();
        var text = inputs.Get("encoder_hidden_states").ToFloatArray();
        float timestep = inputs.Get("timestep").ToFloatArray()[0];
        var want = Velocity(backend, config, expanded, latents, text, timestep);
        var got = Velocity(backend, config, quantised, latents, text, timestep);
        AssertClose(D(want), got, 1e-5, $"wan-small with {GgmlTypes.Name(type)} weights on {backend.Device.Id}");
    }

    private static float[] Velocity(IBackend backend, WanTransformerConfig config, ITensorSource source, float[] latents, float[] text, float timestep)
    {
        using var model = Bind(config, new WeightSet(source, backend), backend);
        using var x = Upload(backend, latents, [4, 3, 4, 6]);
        using var t = Upload(backend, text, [512, 24]);
        using var v = model.Forward(x, timestep, t);
        return Download(backend, v);
    }

    /// <summary>The real model bound to a <see cref="WeightSet"/> (its private constructor; the checkpoint argument is only disposed with it).</summary>
    public static WanTransformer Bind(WanTransformerConfig config, WeightSet weights, IBackend backend)
    {
        var ctor = typeof(WanTransformer).GetConstructor(BindingFlags.NonPublic | BindingFlags.Instance,
            [typeof(WanTransformerConfig), typeof(IBackend), typeof(SafetensorsCheckpoint), typeof(WeightSet)])!;
        var placeholder = SafetensorsCheckpoint.Open(Path.Combine(Dir, "model", "transformer"));
        try
        {
            return (WanTransformer)ctor.Invoke([config, backend, placeholder, weights]);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            placeholder.Dispose();
            weights.Dispose();
            throw e.InnerException;
        }
    }

    /// <summary>
    /// A checkpoint whose 2-D weights are quantised to <c>type</c>: handed out as blocks (keepBlocks) or as dense f32
    /// tensors of the values the blocks decode to; every other tensor as stored.
    /// </summary>
    private sealed class ConvertedSource : ITensorSource, IQuantizedTensorSource
    {
        private readonly SafetensorsCheckpoint _inner;
        private readonly GgmlType _type;
        private readonly Dictionary<string, byte[]> _blocks = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Tensor> _expanded = new(StringComparer.Ordinal);

        public ConvertedSource(SafetensorsCheckpoint inner, GgmlType type, bool keepBlocks)
        {
            _inner = inner;
            _type = type;
            foreach (var name in inner.Names)
            {
                var (_, shape) = inner.Describe(name);
                long count = shape.Aggregate(1L, (a, b) => a * b);
                if (shape.Length != 2 || !name.EndsWith(".weight", StringComparison.Ordinal) || GgmlTypes.ByteCount(type, count) < 0) continue;
                var blocks = new byte[GgmlTypes.ByteCount(type, count)];
                GgmlQuantize.Blocks(type, inner.Get(name).ToFloatArray(), blocks);
                if (keepBlocks) _blocks[name] = blocks;
                else
                {
                    var values = new float[count];
                    GgmlDequantize.Blocks(type, blocks, values);
                    _expanded[name] = Tensor.FromArray(values, shape);
                }
            }
        }

        public int BlockCount => Math.Max(_blocks.Count, _expanded.Count);
        public string Source => _inner.Source + " as " + GgmlTypes.Name(_type);
        public IEnumerable<string> Names => _inner.Names;
        public bool Contains(string name) => _inner.Contains(name);
        public (DType DType, int[] Shape) Describe(string name) => _inner.Describe(name);
        public Tensor Get(string name) => _expanded.TryGetValue(name, out var t) ? t : _inner.Get(name);
        public string FileOf(string name) => _inner.FileOfTensor(name);

        public bool TryGetBlocks(string name, out GgmlType type, out ReadOnlyMemory<byte> blocks)
        {
            bool found = _blocks.TryGetValue(name, out var b);
            (type, blocks) = (_type, b);
            return found;
        }

        public void Dispose()
        {
            foreach (var t in _expanded.Values) t.Dispose();
        }
    }
}
