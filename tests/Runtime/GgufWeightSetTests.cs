using Sora.Kernels.Cpu;
using Sora.Kernels.Gpu;
using Sora.Native.Loading;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Sora.Runtime.Safetensors;
using Sora.Tests.Kernels;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Runtime;

/// <summary>
/// <see cref="WeightSet.TakeWeight"/>: the handle it builds from what a source holds — ggml blocks through
/// <see cref="IQuantizedTensorSource"/> (an in-memory source made from tests/fixtures/gguf files), fp8 codes with a
/// ComfyUI <c>scale_weight</c> beside them, adapters through <see cref="IAdapterSource"/> — multiplies like the float64
/// GEMM on the values ggml expands the file to, and a source that lies fails naming the file and tensor.
/// </summary>
public sealed class GgufWeightSetTests
{
    private static readonly CpuBackend Cpu = new(2);

    [Theory]
    [MemberData(nameof(WeightFixtures.FileTypes), MemberType = typeof(WeightFixtures))]
    public void Fixture_weights_become_block_handles_that_multiply_like_ggmls_values(string fileType)
    {
        using var source = MemorySource.FromGguf(Path.Combine(WeightFixtures.Dir, $"wan-tiny-{fileType}.gguf"));
        CheckEveryWeight(Cpu, source, fileType);
    }

    [Fact]
    public void Fixture_weights_multiply_on_the_ilgpu_cpu_accelerator()
    {
        using var backend = IlgpuBackend.CreateCpu();
        using var source = MemorySource.FromGguf(Path.Combine(WeightFixtures.Dir, "wan-tiny-Q6_K.gguf"));
        CheckEveryWeight(backend, source, "Q6_K");
    }

    private static void CheckEveryWeight(IBackend backend, MemorySource source, string fileType)
    {
        using var expected = SafetensorsFile.Open(Path.Combine(WeightFixtures.Dir, $"wan-tiny-{fileType}.expected.safetensors"));
        using var weights = new WeightSet(source, backend);
        foreach (var name in source.Names.Where(n => n.EndsWith(".weight", StringComparison.Ordinal)))
        {
            var shape = source.Describe(name).Shape;
            var weight = weights.TakeWeight(name, shape);
            var block = Assert.IsType<BlockWeight>(weight);
            Assert.Equal(source.TypeOf(name), block.Type);
            int n = weight.Out, k = weight.In, m = 5;
            float[] x = Random(m * k, n + k);
            using var xt = Upload(backend, x, [m, k]);
            using var y = Poisoned(backend, m, n);
            backend.Gemm(xt, weight, null, y);
            var want = Reference.Gemm(D(x), D(expected.Get(name).ToFloatArray()), null, m, n, k);
            AssertClose(want, Download(backend, y), 1e-5, $"{fileType} {name}");
        }
        weights.Take("blocks.0.norm3.bias", 256).Dispose();
        weights.EnsureAllBound();
    }

    [Fact]
    public void Blocks_that_do_not_fill_the_shape_fail_naming_file_and_tensor()
    {
        using var source = MemorySource.FromGguf(Path.Combine(WeightFixtures.Dir, "wan-tiny-Q4_K.gguf"));
        source.Truncate("head.head.weight", 144);
        using var weights = new WeightSet(source, Cpu);
        var e = Assert.Throws<ModelLoadException>(() => weights.TakeWeight("head.head.weight", 16, 256));
        Assert.Contains("memory:wan-tiny-Q4_K.gguf", e.Message);
        Assert.Contains("'head.head.weight' holds 2160 bytes of q4_K, [16, 256] takes 2304 bytes", e.Message);
        var shape = Assert.Throws<ModelLoadException>(() => weights.TakeWeight("blocks.0.ffn.0.weight", 32, 256));
        Assert.Contains("'blocks.0.ffn.0.weight' has shape [32, 512], expected [32, 256]", shape.Message);
        source.Retype("blocks.0.ffn.2.weight", (GgmlType)99);
        Assert.Contains("type 99", Assert.Throws<ModelLoadException>(() => weights.TakeWeight("blocks.0.ffn.2.weight", 48, 256)).Message);
    }

    [Theory]
    [InlineData(DType.F8E4M3, 0.0125f)]
    [InlineData(DType.F8E5M2, 3f)]
    [InlineData(DType.F8E4M3, float.NaN)] // no scale_weight: a plain cast
    public void Fp8_weights_take_the_scale_beside_them(DType dtype, float scale)
    {
        int n = 24, k = 40, m = 7;
        byte[] codes = WeightChecks.RandomFp8(dtype, n * k, 3);
        using var source = new MemorySource("memory:fp8");
        var codesTensor = Tensor.ZerosHost(dtype, n, k);
        codes.CopyTo(((HostStorage)codesTensor.Storage).AsSpan<byte>());
        source.Add("blocks.0.ffn.0.weight", codesTensor);
        bool scaled = !float.IsNaN(scale);
        if (scaled) source.Add("blocks.0.ffn.0.scale_weight", Tensor.FromArray([scale], []));
        using var weights = new WeightSet(source, Cpu);
        var weight = Assert.IsType<Fp8Weight>(weights.TakeWeight("blocks.0.ffn.0.weight", n, k));
        Assert.Equal(scaled ? scale : 1f, weight.Scale);
        weights.EnsureAllBound();
        float[] x = Random(m * k, 4);
        using var xt = Upload(Cpu, x, [m, k]);
        using var y = Poisoned(Cpu, m, n);
        Cpu.Gemm(xt, weight, null, y, GemmEpilogue.Silu);
        var want = Reference.Gemm(D(x), D(WeightChecks.DecodeFp8(dtype, codes, scaled ? scale : 1f)), null, m, n, k, Reference.Epilogue.Silu);
        AssertClose(want, Download(Cpu, y), 1e-5, weight.Format);
    }

    [Fact]
    public void A_scale_that_is_not_one_finite_value_fails_naming_it()
    {
        using var source = new MemorySource("memory:fp8");
        source.Add("l.weight", Tensor.ZerosHost(DType.F8E4M3, 2, 2));
        source.Add("l.scale_weight", Tensor.FromArray([1f, 2f], [2]));
        source.Add("m.weight", Tensor.ZerosHost(DType.F8E4M3, 2, 2));
        source.Add("m.scale_weight", Tensor.FromArray([float.PositiveInfinity], [1]));
        using var weights = new WeightSet(source, Cpu);
        Assert.Contains("'l.scale_weight' has shape [2], expected one scale for 'l.weight'", Assert.Throws<ModelLoadException>(() => weights.TakeWeight("l.weight", 2, 2)).Message);
        Assert.Contains("not a finite scale", Assert.Throws<ModelLoadException>(() => weights.TakeWeight("m.weight", 2, 2)).Message);
    }

    [Fact]
    public void Adapters_of_the_source_become_side_paths_and_a_wrong_rank_fails()
    {
        using var source = MemorySource.FromGguf(Path.Combine(WeightFixtures.Dir, "wan-tiny-Q8_0.gguf"));
        using var expected = SafetensorsFile.Open(Path.Combine(WeightFixtures.Dir, "wan-tiny-Q8_0.expected.safetensors"));
        int n = 16, k = 256, r = 4, m = 3;
        float[] down = Random(r * k, 5), up = Random(n * r, 6);
        using var downT = Tensor.FromArray(down, [r, k]);
        using var upT = Tensor.FromArray(up, [n, r]);
        source.Adapters["head.head.weight"] = [new LowRankAdapter(downT, upT, 0.5f)];
        source.Adapters["blocks.0.ffn.2.weight"] = [new LowRankAdapter(downT, upT, 0.5f)];
        using var weights = new WeightSet(source, Cpu);
        var weight = Assert.IsType<LoraWeight>(weights.TakeWeight("head.head.weight", n, k));
        Assert.Equal("q8_0 + LoRA r4", weight.Format);
        var w = D(expected.Get("head.head.weight").ToFloatArray());
        for (int o = 0; o < n; o++)
            for (int i = 0; i < k; i++)
                for (int j = 0; j < r; j++) w[o * k + i] += 0.5 * up[o * r + j] * down[j * k + i];
        float[] x = Random(m * k, 7);
        using var xt = Upload(Cpu, x, [m, k]);
        using var y = Poisoned(Cpu, m, n);
        Cpu.Gemm(xt, weight, null, y);
        AssertClose(Reference.Gemm(D(x), w, null, m, n, k), Download(Cpu, y), 1e-5, weight.Format);
        var e = Assert.Throws<ModelLoadException>(() => weights.TakeWeight("blocks.0.ffn.2.weight", 48, 256));
        Assert.Contains("LoRA on 'blocks.0.ffn.2.weight' has down [4, 256] and up [16, 4], the weight is [48, 256]", e.Message);
    }

    /// <summary>
    /// Named host tensors in memory; tensors added from a GGUF file keep their ggml blocks (handed out by
    /// <see cref="TryGetBlocks"/>), as a GGUF source would.
    /// </summary>
    private sealed class MemorySource(string source) : ITensorSource, IQuantizedTensorSource, IAdapterSource
    {
        private readonly Dictionary<string, Tensor> _dense = new(StringComparer.Ordinal);
        private readonly Dictionary<string, (GgmlType Type, byte[] Blocks, int[] Shape)> _blocks = new(StringComparer.Ordinal);

        public Dictionary<string, LowRankAdapter[]> Adapters { get; } = new(StringComparer.Ordinal);

        public static MemorySource FromGguf(string path)
        {
            using var gguf = GgufFile.Open(path);
            var source = new MemorySource("memory:" + Path.GetFileName(path));
            foreach (var t in gguf.Tensors)
            {
                if (t.Type == GgmlType.F32) source.Add(t.Name, Tensor.FromArray(gguf.Get(t.Name).ToFloatArray(), t.Shape));
                else source._blocks[t.Name] = (t.Type, gguf.GetBytes(t.Name).ToArray(), t.Shape);
            }
            return source;
        }

        public void Add(string name, Tensor t) => _dense[name] = t;

        public GgmlType TypeOf(string name) => _blocks[name].Type;

        /// <summary>Drops the last <paramref name="bytes"/> bytes of a tensor's blocks (a file that lies about its size).</summary>
        public void Truncate(string name, int bytes)
        {
            var b = _blocks[name];
            _blocks[name] = b with { Blocks = b.Blocks[..^bytes] };
        }

        public void Retype(string name, GgmlType type) => _blocks[name] = _blocks[name] with { Type = type };

        public string Source { get; } = source;
        public IEnumerable<string> Names => _dense.Keys.Concat(_blocks.Keys);
        public bool Contains(string name) => _dense.ContainsKey(name) || _blocks.ContainsKey(name);

        public (DType DType, int[] Shape) Describe(string name) =>
            _dense.TryGetValue(name, out var t) ? (t.DType, t.Shape) : (DType.F32, _blocks[name].Shape);

        public Tensor Get(string name) => _dense.TryGetValue(name, out var t) ? t : throw new InvalidOperationException($"'{name}' is stored in blocks");

        public string FileOf(string name) => Source;

        public bool TryGetBlocks(string name, out GgmlType type, out ReadOnlyMemory<byte> blocks)
        {
            bool found = _blocks.TryGetValue(name, out var b);
            (type, blocks) = found ? (b.Type, b.Blocks) : (default, default);
            return found;
        }

        public IReadOnlyList<LowRankAdapter> AdaptersOf(string name) => Adapters.TryGetValue(name, out var a) ? a : [];

        public void Dispose()
        {
            foreach (var t in _dense.Values) t.Dispose();
        }
    }
}
