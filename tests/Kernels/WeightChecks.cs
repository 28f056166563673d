using System.Buffers.Binary;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels;

/// <summary>
/// Checks of the GEMM and convolution with stored weights of every kind (<see cref="Weight"/>: fp8, ggml blocks, LoRA
/// side paths), shared by every backend's tests: the result equals the float64 GEMM on the expanded weight (each stored
/// value decoded by <see cref="GgmlDequantize"/>, itself checked bit for bit against ggml's fixtures, or by the fp8
/// tables), with fresh random activations and NaN-poisoned outputs.
/// </summary>
public static class WeightChecks
{
    public static readonly GgmlType[] BlockTypes =
    [
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_0, GgmlType.Q4_1,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
    ];

    /// <summary>
    /// Random encoded blocks for <paramref name="elements"/> values: random quant bits, with every f16 scale field set to a
    /// random finite value of moderate size (random bits there would hold infinities and NaN).
    /// </summary>
    public static byte[] RandomBlocks(GgmlType type, long elements, int seed)
    {
        var rng = new Random(seed);
        var bytes = new byte[GgmlTypes.ByteCount(type, elements)];
        switch (type)
        {
            case GgmlType.F32:
                for (int i = 0; i < elements; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), Value(rng));
                return bytes;
            case GgmlType.F16:
                for (int i = 0; i < elements; i++) BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(2 * i), (Half)Value(rng));
                return bytes;
            case GgmlType.BF16:
                for (int i = 0; i < elements; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), BFloat16.FromFloat(Value(rng)));
                return bytes;
        }
        rng.NextBytes(bytes);
        int blockBytes = GgmlTypes.BlockBytes(type);
        int[] halves = type switch
        {
            GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 => [0],
            GgmlType.Q4_1 or GgmlType.Q5_1 or GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
            GgmlType.Q2_K => [80, 82],
            GgmlType.Q3_K => [108],
            GgmlType.Q6_K => [208],
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
        };
        for (int b = 0; b < bytes.Length; b += blockBytes)
            foreach (int at in halves) BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(b + at), (Half)(Value(rng) * 0.05f));
        return bytes;
    }

    /// <summary>A value in ±[0.1, 1): never zero.</summary>
    private static float Value(Random rng) => (float)((0.1 + 0.9 * rng.NextDouble()) * (rng.Next(2) == 0 ? -1 : 1));

    /// <summary>The values the blocks stand for (ggml's dequantisation).</summary>
    public static float[] Expand(GgmlType type, byte[] blocks, long elements)
    {
        var values = new float[elements];
        GgmlDequantize.Blocks(type, blocks, values);
        return values;
    }

    /// <summary>Random fp8 codes of finite values (no NaN or infinity codes).</summary>
    public static byte[] RandomFp8(DType dtype, int count, int seed)
    {
        var rng = new Random(seed);
        var codes = new byte[count];
        for (int i = 0; i < count; i++)
        {
            byte c;
            do c = (byte)rng.Next(256);
            while (dtype == DType.F8E4M3 ? (c & 0x7F) == 0x7F : (c & 0x7C) == 0x7C);
            codes[i] = c;
        }
        return codes;
    }

    public static float[] DecodeFp8(DType dtype, byte[] codes, float scale) =>
        codes.Select(c => (dtype == DType.F8E4M3 ? Float8.E4M3ToFloat(c) : Float8.E5M2ToFloat(c)) * scale).ToArray();

    /// <summary>A weight of the backend holding <paramref name="blocks"/>, disposing its bytes with the returned owner.</summary>
    public static BlockWeight Blocks(IBackend backend, GgmlType type, byte[] blocks, int n, int k, out IDisposable owner)
    {
        var bytes = backend.Upload(blocks);
        owner = bytes;
        return new BlockWeight(type, bytes, n, k);
    }

    public static Fp8Weight Fp8(IBackend backend, DType dtype, byte[] codes, int n, int k, float scale, out IDisposable owner)
    {
        var host = Tensor.ZerosHost(dtype, n, k);
        codes.CopyTo(((HostStorage)host.Storage).AsSpan<byte>());
        if (backend.Device.Kind == "cpu")
        {
            owner = host;
            return new Fp8Weight(host, scale);
        }
        using (host)
        {
            var device = backend.ToDevice(host);
            owner = device;
            return new Fp8Weight(device, scale);
        }
    }

    /// <summary>Every epilogue: y = epilogue(x·Wᵀ + b) with W the given weight standing for <paramref name="w"/> [n, k].</summary>
    public static void Gemm(IBackend backend, Weight weight, float[] w, int m, int n, int k, int seed, string what)
    {
        foreach (var epilogue in Enum.GetValues<GemmEpilogue>())
        {
            int s = seed + 17 * (int)epilogue;
            float[] x = Random(m * k, s), b = Random(n, s + 1), r = Random(m * n, s + 2), g = Random(n, s + 3);
            using var xt = Upload(backend, x, [m, k]);
            using var bt = Upload(backend, b, [n]);
            using var rt = Upload(backend, r, [m, n]);
            using var gt = Upload(backend, g, [n]);
            using var y = Poisoned(backend, m, n);
            bool needsResidual = epilogue is GemmEpilogue.AddResidual or GemmEpilogue.GatedResidual;
            backend.Gemm(xt, weight, bt, y, epilogue, needsResidual ? rt : null, epilogue == GemmEpilogue.GatedResidual ? gt : null);
            var expected = Reference.Gemm(D(x), D(w), D(b), m, n, k, (Reference.Epilogue)(int)epilogue, D(r), D(g));
            AssertClose(expected, Download(backend, y), 1e-5, $"{what} {epilogue} {m}x{n}x{k}");
        }
    }

    /// <summary>The per-row gated GEMM, residual given as y itself.</summary>
    public static void GemmRows(IBackend backend, Weight weight, float[] w, int m, int n, int k, int seed, string what)
    {
        const int g = 3;
        float[] x = Random(m * k, seed), b = Random(n, seed + 1), r = Random(m * n, seed + 2), gb = Random(n, seed + 3), gs = Random(g * n, seed + 4);
        int[] sets = RowModulationChecks.Sets(m, g, seed + 5);
        using var xt = Upload(backend, x, [m, k]);
        using var bt = Upload(backend, b, [n]);
        using var rt = Upload(backend, r, [m, n]);
        using var gbt = Upload(backend, gb, [n]);
        using var gst = Upload(backend, gs, [g, n]);
        backend.GemmGatedRows(xt, weight, bt, rt, rt, gbt, gst, sets);
        var expected = Reference.GemmGatedRows(D(x), D(w), D(b), m, n, k, D(r), D(gb), D(gs), sets);
        AssertClose(expected, Download(backend, rt), 1e-5, $"{what} GemmGatedRows {m}x{n}x{k}");
    }

    public static void BlockGemm(IBackend backend, GgmlType type, int m, int n, int k, int seed)
    {
        byte[] blocks = RandomBlocks(type, (long)n * k, seed);
        float[] w = Expand(type, blocks, (long)n * k);
        var weight = Blocks(backend, type, blocks, n, k, out var owner);
        using (owner)
        {
            Gemm(backend, weight, w, m, n, k, seed + 100, GgmlTypes.Name(type));
            GemmRows(backend, weight, w, m, n, k, seed + 200, GgmlTypes.Name(type));
        }
    }

    public static void Fp8Gemm(IBackend backend, DType dtype, float scale, int m, int n, int k, int seed)
    {
        byte[] codes = RandomFp8(dtype, n * k, seed);
        var weight = Fp8(backend, dtype, codes, n, k, scale, out var owner);
        using (owner)
        {
            float[] w = DecodeFp8(dtype, codes, scale);
            Gemm(backend, weight, w, m, n, k, seed + 100, weight.Format);
            GemmRows(backend, weight, w, m, n, k, seed + 200, weight.Format);
        }
    }

    /// <summary>
    /// Two nested LoRAs (ranks 3 and 5) on a Q8_0 base: every epilogue and the per-row gated GEMM against the float64
    /// GEMM on W + s₁·B₁·A₁ + s₂·B₂·A₂ (the merged weight, computed in float64).
    /// </summary>
    public static void LoraGemm(IBackend backend, int m, int n, int k, int seed)
    {
        byte[] blocks = RandomBlocks(GgmlType.Q8_0, (long)n * k, seed);
        var merged = D(Expand(GgmlType.Q8_0, blocks, (long)n * k));
        var baseWeight = Blocks(backend, GgmlType.Q8_0, blocks, n, k, out var owner);
        var adapters = new List<Tensor>();
        try
        {
            Weight weight = baseWeight;
            foreach (var (rank, scale) in new[] { (3, 0.7f), (5, -1.3f) })
            {
                float[] down = Random(rank * k, seed + rank), up = Random(n * rank, seed + 10 * rank);
                for (int o = 0; o < n; o++)
                    for (int i = 0; i < k; i++)
                    {
                        double s = 0;
                        for (int r = 0; r < rank; r++) s += (double)up[o * rank + r] * down[r * k + i];
                        merged[o * k + i] += (double)scale * s;
                    }
                var dt = Upload(backend, down, [rank, k]);
                var ut = Upload(backend, up, [n, rank]);
                adapters.Add(dt);
                adapters.Add(ut);
                weight = new LoraWeight(weight, dt, ut, scale);
            }
            Assert.Equal("q8_0 + LoRA r3 + LoRA r5", weight.Format);
            var w = merged.Select(v => (float)v).ToArray();
            // The float64 merged weight, not its float32 rounding, is the reference.
            GemmAgainst(backend, weight, merged, m, n, k, seed + 300);
            GemmRows(backend, weight, w, m, n, k, seed + 400, "LoRA");
        }
        finally
        {
            foreach (var t in adapters) t.Dispose();
            owner.Dispose();
        }
    }

    private static void GemmAgainst(IBackend backend, Weight weight, double[] w, int m, int n, int k, int seed)
    {
        foreach (var epilogue in Enum.GetValues<GemmEpilogue>())
        {
            int s = seed + 17 * (int)epilogue;
            float[] x = Random(m * k, s), b = Random(n, s + 1), r = Random(m * n, s + 2), g = Random(n, s + 3);
            using var xt = Upload(backend, x, [m, k]);
            using var bt = Upload(backend, b, [n]);
            using var rt = Upload(backend, r, [m, n]);
            using var gt = Upload(backend, g, [n]);
            using var y = Poisoned(backend, m, n);
            bool needsResidual = epilogue is GemmEpilogue.AddResidual or GemmEpilogue.GatedResidual;
            backend.Gemm(xt, weight, bt, y, epilogue, needsResidual ? rt : null, epilogue == GemmEpilogue.GatedResidual ? gt : null);
            var expected = Reference.Gemm(D(x), w, D(b), m, n, k, (Reference.Epilogue)(int)epilogue, D(r), D(g));
            AssertClose(expected, Download(backend, y), 1e-5, $"LoRA {epilogue} {m}x{n}x{k}");
        }
    }

    /// <summary>A causal 3×3×3 convolution whose weight is stored as <paramref name="weight"/>, standing for <paramref name="w"/>.</summary>
    public static void Conv(IBackend backend, Weight weight, float[] w, int cin, int cout, int seed, string what)
    {
        int t = 2, h = 5, wd = 4;
        var g = new Conv3dGeometry(3, 3, 3, PadT0: 2, PadH0: 1, PadH1: 1, PadW0: 1, PadW1: 1);
        float[] x = Random(cin * t * h * wd, seed), b = Random(cout, seed + 1);
        var expected = Reference.Conv3d(D(x), cin, t, h, wd, D(w), cout, 3, 3, 3, D(b), 1, 1, 1, 2, 0, 1, 1, 1, 1, null, 0, out int ot, out int oh, out int ow);
        using var xt = Upload(backend, x, [cin, t, h, wd]);
        using var bt = Upload(backend, b, [cout]);
        using var y = Poisoned(backend, cout, ot, oh, ow);
        backend.Conv3d(xt, weight, bt, y, g);
        AssertClose(expected, Download(backend, y), 1e-5, $"{what} conv {cin}→{cout}");
    }

    /// <summary>Conv weights [cout, cin·27] in Q8_0 (rows starting inside blocks: cin·27 is not a multiple of 32) and fp8.</summary>
    public static void ConvWeights(IBackend backend)
    {
        int cin = 3, cout = 32, k = cin * 27;
        byte[] blocks = RandomBlocks(GgmlType.Q8_0, cout * k, 5);
        using (var bw = backend.Upload(blocks))
            Conv(backend, new BlockWeight(GgmlType.Q8_0, bw, cout, k), Expand(GgmlType.Q8_0, blocks, cout * k), cin, cout, 6, "q8_0");
        byte[] codes = RandomFp8(DType.F8E4M3, cout * k, 7);
        var fp8 = Fp8(backend, DType.F8E4M3, codes, cout, k, 0.25f, out var owner);
        using (owner)
            Conv(backend, fp8, DecodeFp8(DType.F8E4M3, codes, 0.25f), cin, cout, 8, "f8_e4m3 scaled");
    }

    /// <summary>Dequantize gives exactly the decoded values, rows starting inside blocks included.</summary>
    public static void DequantizeExact(IBackend backend, GgmlType type, int n, int k, int seed)
    {
        byte[] blocks = RandomBlocks(type, (long)n * k, seed);
        var weight = Blocks(backend, type, blocks, n, k, out var owner);
        using (owner)
        using (var y = Poisoned(backend, n, k))
        {
            backend.Dequantize(weight, y);
            AssertBits(Expand(type, blocks, (long)n * k), Download(backend, y), $"{GgmlTypes.Name(type)} [{n}, {k}]");
        }
    }

    public static void AssertBits(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        int mismatches = 0, first = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i]) || BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
            {
                mismatches++;
                if (first < 0) first = i;
            }
        }
        Assert.True(mismatches == 0, $"{what}: {mismatches} of {actual.Length} elements differ, first [{first}] = {(first < 0 ? 0 : actual[first])}, expected {(first < 0 ? 0 : expected[first])}");
    }

    /// <summary>Mismatched sizes, foreign bytes and kinds a path cannot take are errors naming the argument.</summary>
    public static void BadWeightsAreRejected(IBackend backend, IBackend other)
    {
        byte[] blocks = RandomBlocks(GgmlType.Q8_0, 64, 1);
        using var bytes = backend.Upload(blocks);
        Assert.Contains("takes 102 bytes", Assert.Throws<ArgumentException>(() => new BlockWeight(GgmlType.Q8_0, bytes, 1, 64 + 32)).Message);
        Assert.Contains("not whole q4_K blocks", Assert.Throws<ArgumentException>(() => new BlockWeight(GgmlType.Q4_K, bytes, 1, 64)).Message);
        Assert.Throws<ArgumentException>(() => new BlockWeight((GgmlType)99, bytes, 1, 64));
        var weight = new BlockWeight(GgmlType.Q8_0, bytes, 2, 32);
        using var x = Upload(backend, Random(3 * 31, 2), [3, 31]);
        using var y = Poisoned(backend, 3, 2);
        var e = Assert.Throws<ArgumentException>(() => backend.Gemm(x, weight, null, y));
        Assert.Equal("w", e.ParamName);
        Assert.Contains("q8_0", e.Message);
        using var foreign = other.Upload(blocks);
        using var x32 = Upload(backend, Random(3 * 32, 3), [3, 32]);
        Assert.Equal("w", Assert.Throws<ArgumentException>(() => backend.Gemm(x32, new BlockWeight(GgmlType.Q8_0, foreign, 2, 32), null, y)).ParamName);
        using var down = Upload(backend, Random(2 * 31, 4), [2, 31]);
        using var up = Upload(backend, Random(2 * 2, 5), [2, 2]);
        Assert.Contains("do not fit", Assert.Throws<ArgumentException>(() => new LoraWeight(weight, down, up, 1f)).Message);
        using var codes = Upload(backend, Random(4, 6), [2, 2]);
        Assert.Throws<ArgumentException>(() => new Fp8Weight(codes));
    }
}
