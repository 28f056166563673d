using Sora.Runtime.Gguf;
using Sora.Runtime.Safetensors;
using Xunit;

namespace Sora.Tests.Runtime;

/// <summary>The GGUF writer: the fixture source written with ggml's types reproduces ggml's files byte for byte, and files read back by the reader.</summary>
public sealed class GgufWriterTests : IDisposable
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "fixtures", "gguf");
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    public static readonly TheoryData<string> FileTypes = new() { "F16", "BF16", "Q8_0", "Q4_K", "Q5_K", "Q6_K" };

    [Theory]
    [MemberData(nameof(FileTypes))]
    public void WritesGgmlsFileByteForByte(string fileType)
    {
        string reference = Path.Combine(Dir, $"wan-tiny-{fileType}.gguf");
        using var gguf = GgufFile.Open(reference);
        using var source = SafetensorsFile.Open(Path.Combine(Dir, "source.safetensors"));
        var tensors = gguf.Tensors.Select(t => new GgufWriterTensor(t.Name, t.Type, t.Shape, () =>
        {
            var bytes = new byte[t.ByteLength];
            GgmlQuantize.Blocks(t.Type, source.Get(t.Name).ToFloatArray(), bytes);
            return bytes;
        })).ToList();
        var metadata = new[]
        {
            KeyValuePair.Create("general.architecture", new GgufValue(GgufValueType.String, "wan")),
            KeyValuePair.Create("general.quantization_version", new GgufValue(GgufValueType.UInt32, 2u)),
            KeyValuePair.Create("general.name", new GgufValue(GgufValueType.String, $"wan-tiny-{fileType}")),
        };
        string path = _dir.File("out.gguf");
        GgufWriter.Write(path, metadata, tensors);
        Assert.Equal(File.ReadAllBytes(reference), File.ReadAllBytes(path));
    }

    [Fact]
    public void EveryMetadataTypeAndACustomAlignmentReadBack()
    {
        var values = new Dictionary<string, GgufValue>
        {
            ["u8"] = new(GgufValueType.UInt8, (byte)7), ["i8"] = new(GgufValueType.Int8, (sbyte)-7),
            ["u16"] = new(GgufValueType.UInt16, (ushort)700), ["i16"] = new(GgufValueType.Int16, (short)-700),
            ["u32"] = new(GgufValueType.UInt32, 70000u), ["i32"] = new(GgufValueType.Int32, -70000),
            ["f32"] = new(GgufValueType.Float32, 0.1f), ["b"] = new(GgufValueType.Bool, true),
            ["s"] = new(GgufValueType.String, "ünïcode"), ["u64"] = new(GgufValueType.UInt64, ulong.MaxValue),
            ["i64"] = new(GgufValueType.Int64, long.MinValue), ["f64"] = new(GgufValueType.Float64, Math.E),
            ["strings"] = new(GgufValueType.Array, new[] { "x", "", "yz" }, GgufValueType.String),
            ["comfy.gguf.orig_shape.w"] = new(GgufValueType.Array, new[] { 2, 3, 2, 2, 8 }, GgufValueType.Int32),
        };
        var rng = new Random(5);
        var w = Enumerable.Range(0, 192).Select(_ => (float)rng.NextDouble()).ToArray();
        var q = new byte[GgmlTypes.ByteCount(GgmlType.Q8_0, w.Length)];
        GgmlQuantize.Blocks(GgmlType.Q8_0, w, q);
        string path = _dir.File("rt.gguf");
        GgufWriter.Write(path, values, new[]
        {
            new GgufWriterTensor("bias", GgmlType.F32, new[] { 3 }, () => new byte[12]),
            new GgufWriterTensor("w", GgmlType.Q8_0, new[] { 6, 32 }, () => q),
        }, alignment: 128);
        using var f = GgufFile.Open(path);
        Assert.Equal(128, f.Alignment);
        Assert.Equal(128, f.GetInfo("w").Offset);
        foreach (var (key, v) in values)
        {
            Assert.Equal(v.Type, f.Metadata[key].Type);
            if (v.IsArray) Assert.Equal((Array)v.Value, (Array)f.Metadata[key].Value);
            else Assert.Equal(v.Value, f.Metadata[key].Value);
        }
        Assert.Equal(new[] { 2, 3, 2, 2, 8 }, f.GetInfo("w").Shape);
        Assert.Equal(q, f.GetBytes("w").ToArray());
    }

    [Fact]
    public void AFailureLeavesNoFile()
    {
        string path = _dir.File("never.gguf");
        var none = Array.Empty<KeyValuePair<string, GgufValue>>();
        Assert.Throws<InvalidDataException>(() => GgufWriter.Write(path, none, new[]
        {
            new GgufWriterTensor("a", GgmlType.F32, new[] { 4 }, () => new byte[16]),
            new GgufWriterTensor("b", GgmlType.F32, new[] { 4 }, () => throw new InvalidDataException("source failed")),
        }));
        var e = Assert.Throws<ArgumentException>(() => GgufWriter.Write(path, none, new[] { new GgufWriterTensor("c", GgmlType.F32, new[] { 4 }, () => new byte[15]) }));
        Assert.Contains("'c'", e.Message);
        Assert.Throws<ArgumentException>(() => GgufWriter.Write(path, none, new[] { new GgufWriterTensor("k", GgmlType.Q4_K, new[] { 2, 128 }, () => new byte[144]) }));
        Assert.Empty(Directory.GetFiles(_dir.Path));
    }
}
