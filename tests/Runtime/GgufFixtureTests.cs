using System.Globalization;
using System.Text.RegularExpressions;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Sora.Runtime.Safetensors;
using Xunit;
using Xunit.Abstractions;

namespace Sora.Tests.Runtime;

/// <summary>
/// The reader and dequantisers against ggml itself (tests/fixtures/gguf, written and decoded by ggml's own C code):
/// headers as gguf_init_from_file reported them (gguf_headers.log), and every tensor of every file decoded to
/// exactly the bits of ggml's to_float (`*.expected.safetensors`). Every format is bit-exact because the
/// dequantisers keep ggml's operation order with separately rounded products and sums.
/// </summary>
public sealed class GgufFixtureTests(ITestOutputHelper output)
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "fixtures", "gguf");

    public static readonly TheoryData<string> FileTypes = new() { "F16", "BF16", "Q8_0", "Q5_0", "Q5_1", "Q4_0", "Q4_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K" };

    private static readonly string[] Names =
        { "blocks.0.self_attn.q.weight", "blocks.0.ffn.0.weight", "blocks.0.ffn.2.weight", "head.head.weight", "blocks.0.norm3.bias", "patch_embedding.weight" };

    private static string GgufPath(string type) => Path.Combine(Dir, $"wan-tiny-{type}.gguf");

    public static readonly TheoryData<string, bool> FileTypesAndPaths = new();

    static GgufFixtureTests()
    {
        foreach (var type in (IEnumerable<object[]>)FileTypes)
        {
            FileTypesAndPaths.Add((string)type[0], false);
            FileTypesAndPaths.Add((string)type[0], true);
        }
    }

    /// <summary>Both the vector path (where the hardware has it) and the scalar code.</summary>
    [Theory]
    [MemberData(nameof(FileTypesAndPaths))]
    public void EveryTensorDequantisesToGgmlsToFloatBitForBit(string fileType, bool scalarOnly)
    {
        GgmlDequantize.ScalarOnly = scalarOnly; // thread-static: this test's thread only
        try { CheckEveryTensor(fileType); }
        finally { GgmlDequantize.ScalarOnly = false; }
    }

    private static void CheckEveryTensor(string fileType)
    {
        using var gguf = GgufFile.Open(GgufPath(fileType));
        using var expected = SafetensorsFile.Open(Path.Combine(Dir, $"wan-tiny-{fileType}.expected.safetensors"));
        Assert.Equal(Names, gguf.Tensors.Select(t => t.Name));
        Assert.Equal(Names, expected.Names);
        foreach (var info in gguf.Tensors)
        {
            Assert.Equal(expected.Metadata["ggml_type." + info.Name], GgmlTypes.Name(info.Type));
            var want = expected.Get(info.Name);
            Assert.Equal(want.Shape, info.Shape);
            var got = new float[info.ElementCount];
            Array.Fill(got, float.NaN);
            gguf.Get(info.Name).Dequantize(0, got);
            var wantValues = want.ToFloatArray();
            int mismatches = 0;
            for (int i = 0; i < got.Length; i++)
            {
                Assert.True(float.IsFinite(wantValues[i]), $"{info.Name}[{i}]: expected value {wantValues[i]} is not finite");
                if (BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(wantValues[i])) mismatches++;
            }
            Assert.True(mismatches == 0, $"{fileType} {info.Name}: {mismatches} of {got.Length} elements differ from ggml's bits");
        }
    }

    [Theory]
    [MemberData(nameof(FileTypes))]
    public void HeaderMatchesWhatGgmlReported(string fileType)
    {
        using var gguf = GgufFile.Open(GgufPath(fileType));
        var log = File.ReadAllText(Path.Combine(Dir, "gguf_headers.log"));
        var section = log.Split("== ").Single(s => s.StartsWith($"out/wan-tiny-{fileType}.gguf:", StringComparison.Ordinal));
        var head = Regex.Match(section, @"version=(\d+) n_kv=(\d+) n_tensors=(\d+) alignment=(\d+) data_offset=(\d+) arch=(\w+)");
        Assert.True(head.Success);
        Assert.Equal(uint.Parse(head.Groups[1].Value, CultureInfo.InvariantCulture), gguf.Version);
        Assert.Equal(int.Parse(head.Groups[2].Value, CultureInfo.InvariantCulture), gguf.Metadata.Count);
        Assert.Equal(int.Parse(head.Groups[3].Value, CultureInfo.InvariantCulture), gguf.Tensors.Count);
        Assert.Equal(long.Parse(head.Groups[4].Value, CultureInfo.InvariantCulture), gguf.Alignment);
        Assert.Equal(long.Parse(head.Groups[5].Value, CultureInfo.InvariantCulture), gguf.DataStart);
        Assert.Equal(head.Groups[6].Value, gguf.Metadata["general.architecture"].AsString());

        Assert.Equal(new[] { "general.architecture", "general.quantization_version", "general.name" }, gguf.Metadata.Keys);
        Assert.Equal(GgufValueType.UInt32, gguf.Metadata["general.quantization_version"].Type);
        Assert.Equal(2L, gguf.Metadata["general.quantization_version"].AsInt64());
        Assert.Equal($"wan-tiny-{fileType}", gguf.Metadata["general.name"].AsString());

        var rows = Regex.Matches(section, @"\[(\d)\] (\S+)\s+type=(\w+)\s+ne=\[([\d,]+)\] n_dims=(\d) offset=(\d+) \(abs \d+\) nbytes=(\d+)");
        Assert.Equal(6, rows.Count);
        foreach (Match row in rows)
        {
            var t = gguf.Tensors[int.Parse(row.Groups[1].Value, CultureInfo.InvariantCulture)];
            Assert.Equal(row.Groups[2].Value, t.Name);
            Assert.Equal(row.Groups[3].Value, GgmlTypes.Name(t.Type));
            int nDims = int.Parse(row.Groups[5].Value, CultureInfo.InvariantCulture);
            var ne = row.Groups[4].Value.Split(',').Select(long.Parse).ToArray();
            Assert.Equal(ne[..nDims], t.Ne);
            Assert.Equal(ne[..nDims].Reverse().Select(d => (int)d), t.Shape);
            Assert.Equal(long.Parse(row.Groups[6].Value, CultureInfo.InvariantCulture), t.Offset);
            Assert.Equal(long.Parse(row.Groups[7].Value, CultureInfo.InvariantCulture), t.ByteLength);
        }
        Assert.Equal(new FileInfo(GgufPath(fileType)).Length, gguf.DataStart + gguf.Tensors[^1].Offset + gguf.Tensors[^1].ByteLength);
    }

    /// <summary>Any range of elements or rows, starting and ending anywhere inside blocks, equals that slice of the whole tensor, and nothing outside it is written.</summary>
    [Theory]
    [MemberData(nameof(FileTypes))]
    public void RangesAndRowsEqualSlicesOfTheWholeTensor(string fileType)
    {
        using var gguf = GgufFile.Open(GgufPath(fileType));
        var rng = new Random(fileType.GetHashCode(StringComparison.Ordinal) & 0xFFFF);
        const float Guard = 12345.678f;
        foreach (var info in gguf.Tensors)
        {
            var t = gguf.Get(info.Name);
            var whole = t.ToFloatArray();
            for (int trial = 0; trial < 40; trial++)
            {
                int start = rng.Next(whole.Length), count = rng.Next(0, whole.Length - start + 1);
                var buffer = new float[count + 2];
                Array.Fill(buffer, float.NaN);
                buffer[0] = buffer[^1] = Guard;
                t.Dequantize(start, buffer.AsSpan(1, count));
                Assert.Equal(Guard, buffer[0]);
                Assert.Equal(Guard, buffer[^1]);
                for (int i = 0; i < count; i++)
                    if (BitConverter.SingleToInt32Bits(buffer[1 + i]) != BitConverter.SingleToInt32Bits(whole[start + i]))
                        Assert.Fail($"{info.Name} [{start}, {start + count}): element {i} is {buffer[1 + i]}, the whole tensor has {whole[start + i]}");
            }
            long r0 = rng.NextInt64(t.Rows), r1 = rng.NextInt64(r0, t.Rows + 1);
            var rows = new float[(r1 - r0) * t.RowLength];
            Array.Fill(rows, float.NaN);
            t.DequantizeRows(r0, r1, rows);
            Assert.Equal(whole.AsSpan((int)(r0 * t.RowLength), rows.Length).ToArray(), rows);
        }
    }

    /// <summary>‖dequantised − source‖ / ‖source‖ over the four 2-D weights reproduces the README's table (ggml's own numbers).</summary>
    [Theory]
    [InlineData("F16", 2.0798e-04)]
    [InlineData("BF16", 1.6510e-03)]
    [InlineData("Q8_0", 9.8459e-03)]
    [InlineData("Q5_0", 7.6884e-02)]
    [InlineData("Q5_1", 5.0768e-02)]
    [InlineData("Q4_0", 1.5349e-01)]
    [InlineData("Q4_1", 1.0488e-01)]
    [InlineData("Q2_K", 3.2592e-01)]
    [InlineData("Q3_K", 2.0117e-01)]
    [InlineData("Q4_K", 9.8171e-02)]
    [InlineData("Q5_K", 4.8658e-02)]
    [InlineData("Q6_K", 2.8393e-02)]
    public void QuantisationErrorAgainstTheSourceIsGgmlsTable(string fileType, double table)
    {
        using var gguf = GgufFile.Open(GgufPath(fileType));
        using var source = SafetensorsFile.Open(Path.Combine(Dir, "source.safetensors"));
        double err = 0, norm = 0;
        foreach (var name in Names[..4])
        {
            var got = gguf.Get(name).ToFloatArray();
            var src = source.Get(name).ToFloatArray();
            for (int i = 0; i < got.Length; i++)
            {
                err += ((double)got[i] - src[i]) * ((double)got[i] - src[i]);
                norm += (double)src[i] * src[i];
            }
        }
        double rel = Math.Sqrt(err / norm);
        output.WriteLine($"{fileType}: relative error {rel:E4} (ggml's table {table:E4})");
        Assert.InRange(rel, table * (1 - 1e-4), table * (1 + 1e-4));
    }

    [Fact]
    public void DenseTensorsOpenAsHostViewsInTheirDType()
    {
        using var gguf = GgufFile.Open(GgufPath("BF16"));
        using var expected = SafetensorsFile.Open(Path.Combine(Dir, "wan-tiny-BF16.expected.safetensors"));
        var w = gguf.GetDense("patch_embedding.weight");
        Assert.Equal(DType.BF16, w.DType);
        Assert.Equal(new[] { 128, 1, 2, 2 }, w.Shape);
        Assert.Equal(expected.Get("patch_embedding.weight").ToFloatArray(), w.ToFloatArray());
        var bias = gguf.GetDense("blocks.0.norm3.bias");
        Assert.Equal(DType.F32, bias.DType);
        Assert.Equal(expected.Get("blocks.0.norm3.bias").ToFloatArray(), bias.ToFloatArray());

        using var q = GgufFile.Open(GgufPath("Q4_K"));
        var e = Assert.Throws<GgufException>(() => q.GetDense("head.head.weight"));
        Assert.Contains("wan-tiny-Q4_K.gguf", e.Message);
        Assert.Contains("head.head.weight", e.Message);
    }

    [Fact]
    public void AccessAfterDisposeThrowsInsteadOfReadingUnmappedMemory()
    {
        var gguf = GgufFile.Open(GgufPath("Q6_K"));
        var t = gguf.Get("head.head.weight");
        var dense = gguf.GetDense("blocks.0.norm3.bias");
        gguf.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.ToFloatArray());
        Assert.Throws<ObjectDisposedException>(() => gguf.GetBytes("head.head.weight").Length);
        Assert.Throws<ObjectDisposedException>(() => ((HostStorage)dense.Storage).AsSpan<float>().Length);
    }
}
