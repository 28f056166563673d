using System.Buffers.Binary;
using Sora.Runtime.Gguf;
using Xunit;

namespace Sora.Tests.Runtime;

/// <summary>The GGUF reader on hand-built files: every metadata type, alignment, v2, orig_shape reshapes, and each way a header can be wrong.</summary>
public sealed class GgufReaderTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Write(byte[] bytes, string name = "t.gguf")
    {
        string path = _dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private GgufException Rejects(byte[] bytes, string expectedText, string? tensor = null)
    {
        string path = Write(bytes, "bad.gguf");
        var e = Assert.Throws<GgufException>(() => GgufFile.Open(path).Dispose());
        Assert.Contains(path, e.Message);
        Assert.True(e.Message.Contains(expectedText, StringComparison.Ordinal), $"expected \"{expectedText}\" in: {e.Message}");
        if (tensor is not null) Assert.Equal(tensor, e.Tensor);
        return e;
    }

    private static byte[] Q8Block(float d, Func<int, sbyte> q)
    {
        var b = new byte[34];
        BinaryPrimitives.WriteHalfLittleEndian(b, (Half)d);
        for (int j = 0; j < 32; j++) b[2 + j] = (byte)q(j);
        return b;
    }

    [Fact]
    public void ReadsEveryMetadataTypeExactly()
    {
        using var f = GgufFile.Open(Write(GgufBuilder.Rich(new Random(1)).Build()));
        var m = f.Metadata;
        Assert.Equal("wan", m["general.architecture"].AsString());
        Assert.Equal((byte)200, m["u8"].Value);
        Assert.Equal((sbyte)-128, m["i8"].Value);
        Assert.Equal((ushort)65000, m["u16"].Value);
        Assert.Equal((short)-30000, m["i16"].Value);
        Assert.Equal(2u, m["general.quantization_version"].Value);
        Assert.Equal(-2_000_000_000, m["i32"].Value);
        Assert.Equal(1.5f, m["f32"].Value);
        Assert.Equal(true, m["bool"].Value);
        Assert.Equal(ulong.MaxValue, m["u64"].Value);
        Assert.Equal(long.MinValue, m["i64"].Value);
        Assert.Equal(Math.PI, m["f64"].Value);
        Assert.Equal(new[] { "a", "", "ünï" }, (string[])m["strings"].Value);
        Assert.Equal(GgufValueType.String, m["strings"].ElementType);
        Assert.Equal(new[] { false, true }, (bool[])m["bools"].Value);
        Assert.Equal(new[] { -0.25f, 3e38f }, (float[])m["floats"].Value);
        Assert.Equal(new long[] { 8, 3, 1, 2, 2 }, m["comfy.gguf.orig_shape.conv.weight"].AsInt64Array());
        Assert.Equal("", m["empty"].AsString());
        Assert.Throws<InvalidCastException>(() => m["u64"].AsInt64());
        Assert.Equal(-128L, m["i8"].AsInt64());
        Assert.Equal(new[] { "general.architecture", "u8", "i8" }, m.Keys.Take(3));
    }

    [Fact]
    public void ShapesArePyTorchOrderAndOrigShapeReshapes()
    {
        using var f = GgufFile.Open(Write(GgufBuilder.Rich(new Random(2)).Build()));
        Assert.Equal(new[] { "w.q8", "w.q4k", "bias", "conv.weight", "scalar" }, f.Tensors.Select(t => t.Name));
        var q8 = f.GetInfo("w.q8");
        Assert.Equal(new long[] { 64, 3 }, q8.Ne);
        Assert.Equal(new[] { 3, 64 }, q8.Shape);
        Assert.Equal(GgmlType.Q8_0, q8.Type);
        Assert.Equal(3 * 2 * 34, q8.ByteLength);
        var conv = f.GetInfo("conv.weight");
        Assert.Equal(new[] { 8, 3, 1, 2, 2 }, conv.Shape);
        Assert.Equal(new[] { 3, 32 }, conv.StoredShape);
        Assert.Equal(Array.Empty<int>(), f.GetInfo("scalar").Shape);
        Assert.Equal(1, f.GetInfo("scalar").ElementCount);
        foreach (var t in f.Tensors) Assert.Equal(0, t.Offset % 32);
    }

    /// <summary>Rows of a reshaped Q8_0 conv weight begin inside blocks (12 elements a row, 32 a block); each row decodes to q·d.</summary>
    [Fact]
    public void RowsOfAReshapedTensorCrossBlockBoundaries()
    {
        float[] scales = { 0.5f, -0.25f, 2f };
        var data = scales.SelectMany((d, b) => Q8Block(d, j => (sbyte)(j - 16 + b))).ToArray();
        var bytes = new GgufBuilder()
            .KvInt32Array("comfy.gguf.orig_shape.w", 8, 3, 1, 2, 2)
            .Tensor("w", new long[] { 32, 3 }, 8, data)
            .Build();
        using var f = GgufFile.Open(Write(bytes));
        var t = f.Get("w");
        Assert.Equal(8, t.Rows);
        Assert.Equal(12, t.RowLength);
        var rows = new float[3 * 12];
        Array.Fill(rows, float.NaN);
        t.DequantizeRows(2, 5, rows);
        for (int i = 0; i < rows.Length; i++)
        {
            int flat = 24 + i, block = flat / 32, j = flat % 32;
            Assert.Equal((double)(j - 16 + block) * scales[block], rows[i]);
        }
    }

    [Fact]
    public void HonoursGeneralAlignmentAndReadsVersion2()
    {
        var rng = new Random(3);
        var b = new GgufBuilder { Version = 2, Alignment = 64 }
            .KvU32("general.alignment", 64)
            .Tensor("a", new long[] { 5 }, 0, GgufBuilder.Bytes(rng, 20))
            .Tensor("b", new long[] { 32 }, 8, GgufBuilder.Bytes(rng, 34));
        var bytes = b.Build();
        using var f = GgufFile.Open(Write(bytes));
        Assert.Equal(2u, f.Version);
        Assert.Equal(64, f.Alignment);
        Assert.Equal(0, f.DataStart % 64);
        Assert.Equal(b.DataStart, f.DataStart);
        Assert.Equal(64, f.GetInfo("b").Offset);
        Assert.Equal(bytes.AsSpan(b.DataStart + 64, 34).ToArray(), f.GetBytes("b").ToArray());
        Assert.Equal(bytes.AsSpan(b.DataStart, 20).ToArray(), f.GetBytes("a").ToArray());
    }

    [Fact]
    public void RejectsWrongMagicVersionsAndEndianness()
    {
        var good = GgufBuilder.Rich(new Random(4)).Build();
        var bad = (byte[])good.Clone();
        bad[0] = (byte)'X';
        Rejects(bad, "not a GGUF file");
        BinaryPrimitives.WriteUInt32LittleEndian(bad = (byte[])good.Clone(), 0x4655_4747);
        BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(4), 1);
        Rejects(bad, "version 1 is not supported");
        BinaryPrimitives.WriteUInt32BigEndian(bad.AsSpan(4), 3);
        Rejects(bad, "big-endian");
        BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(4), 7);
        Rejects(bad, "unknown GGUF version 7");
        Rejects(good[..10], "shorter than a GGUF header");
    }

    [Fact]
    public void RejectsUnsupportedTypesNamingTheTensor()
    {
        var rng = new Random(5);
        Rejects(new GgufBuilder().Tensor("blocks.0.x", new long[] { 256 }, 16, GgufBuilder.Bytes(rng, 66)).Build(), "ggml type id 16 (iq2_xxs) is not supported", "blocks.0.x");
        Rejects(new GgufBuilder().Tensor("y", new long[] { 32 }, 9, GgufBuilder.Bytes(rng, 36)).Build(), "ggml type id 9 (q8_1) is not supported", "y");
        Rejects(new GgufBuilder().Tensor("z", new long[] { 32 }, 4000, GgufBuilder.Bytes(rng, 36)).Build(), "ggml type id 4000 is not supported", "z");
    }

    [Fact]
    public void RejectsInconsistentTensorInfos()
    {
        var rng = new Random(6);
        byte[] Q8(int blocks) => GgufBuilder.Bytes(rng, 34 * blocks);
        Rejects(new GgufBuilder().Tensor("r", new long[] { 48, 2 }, 8, Q8(3)).Build(), "row length ne[0] = 48 is not a multiple of the q8_0 block size 32", "r");
        Rejects(new GgufBuilder().Tensor("k", new long[] { 128 }, 12, GgufBuilder.Bytes(rng, 144)).Build(), "not a multiple of the q4_K block size 256", "k");
        Rejects(new GgufBuilder().Tensor("d", new long[] { 32, 1, 1, 1, 1 }, 8, Q8(1)).Build(), "has 5 dimensions (at most 4)", "d");
        Rejects(new GgufBuilder().Tensor("big", new long[] { 32, 1L << 31 }, 8, Q8(1)).Build(), "is over 2147483647", "big");
        Rejects(new GgufBuilder().Tensor("o", new long[] { 32 }, 8, Q8(1), offset: 8).Build(), "not a multiple of the alignment 32", "o");
        Rejects(new GgufBuilder().Tensor("p", new long[] { 64 }, 8, Q8(1)).Build(), "runs past the 34-byte data section", "p");
        Rejects(new GgufBuilder().Tensor("a", new long[] { 64 }, 8, Q8(2)).Tensor("b", new long[] { 32 }, 8, Q8(1), offset: 64).Build(), "overlaps tensor 'a'", "b");
        Rejects(new GgufBuilder().Tensor("same", new long[] { 32 }, 8, Q8(1)).Tensor("same", new long[] { 32 }, 8, Q8(1)).Build(), "duplicate tensor name", "same");
        var overflow = new GgufBuilder().Tensor("huge", new long[] { 1L << 30, 1L << 30, 1L << 30 }, 0, Q8(1)).Build();
        Rejects(overflow, "elements", "huge");
    }

    [Fact]
    public void RejectsBadMetadata()
    {
        var rng = new Random(7);
        var tensor = GgufBuilder.Bytes(rng, 34);
        Rejects(new GgufBuilder().KvU32("k", 1).KvU32("k", 2).Build(), "duplicate metadata key 'k'");
        Rejects(new GgufBuilder().Kv("general.alignment", 4, b => b.U32(48, record: false)).Build(), "general.alignment = 48 is not a power of two");
        Rejects(new GgufBuilder().Kv("general.alignment", 4, b => b.U32(0, record: false)).Build(), "is not a power of two");
        Rejects(new GgufBuilder().KvString("general.alignment", "32").Build(), "general.alignment is String, not UInt32");
        Rejects(new GgufBuilder().Kv("t", 13, b => b.Raw(new byte[4])).Build(), "unknown value type 13");
        Rejects(new GgufBuilder().KvArray("n", 9, 1, b => { b.U32(4); b.U64(0); }).Build(), "array of arrays");
        Rejects(new GgufBuilder().Kv("b", 7, b => b.Raw(new byte[] { 2 })).Build(), "bool of value 2");
        Rejects(new GgufBuilder().Kv("s", 8, b => { b.U64(2); b.Raw(new byte[] { 0xC3, 0x28 }); }).Build(), "not valid UTF-8");
        Rejects(new GgufBuilder().KvArray("many", 5, 1L << 40, b => b.Raw(new byte[16])).Build(), "claims 1099511627776 elements");
        Rejects(new GgufBuilder().Kv("long", 8, b => { b.U64(1UL << 62); b.Raw(new byte[8]); }).Build(), "runs past the end of the file");
        Rejects(new GgufBuilder().KvInt32Array("comfy.gguf.orig_shape.w", 5, 7).Tensor("w", new long[] { 32 }, 8, tensor).Build(),
            "= [5, 7] does not hold the tensor's 32 elements", "w");
        Rejects(new GgufBuilder().KvString("comfy.gguf.orig_shape.w", "[32]").Tensor("w", new long[] { 32 }, 8, tensor).Build(),
            "is String, not an array of Int32", "w");
        Rejects(new GgufBuilder().KvInt32Array("comfy.gguf.orig_shape.w", -32).Tensor("w", new long[] { 32 }, 8, tensor).Build(), "holds the dimension -32", "w");
    }

    [Fact]
    public void RejectsCountsTheFileCannotHold()
    {
        var bytes = new GgufBuilder().KvU32("a", 1).Build();
        var lying = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(lying.AsSpan(8), ulong.MaxValue);
        Rejects(lying, "claims 18446744073709551615 tensors");
        lying = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(lying.AsSpan(16), 1UL << 40);
        Rejects(lying, "claims 1099511627776 metadata entries");
        var unpadded = new GgufBuilder().KvU32("a", 1);
        lying = unpadded.Build()[..unpadded.InfoEnd];
        BinaryPrimitives.WriteUInt64LittleEndian(lying.AsSpan(16), 2);
        Rejects(lying, "header claims 2 metadata entries, more than the file's 41 bytes can hold");
        lying = unpadded.Build()[..(unpadded.InfoEnd - 1)];
        Rejects(lying, "the file ends inside");
    }

    [Fact]
    public void MissingTensorAndMissingFileNameThePath()
    {
        string path = Write(GgufBuilder.Rich(new Random(8)).Build());
        using var f = GgufFile.Open(path);
        var e = Assert.Throws<GgufException>(() => f.Get("nope"));
        Assert.Equal("nope", e.Tensor);
        Assert.Contains(path, e.Message);
        string missing = _dir.File("missing.gguf");
        Assert.Contains("file not found", Assert.Throws<GgufException>(() => GgufFile.Open(missing)).Message);
    }
}
