using System.Buffers.Binary;
using Sora.Runtime;
using Sora.Runtime.Safetensors;
using Xunit;
using static Sora.Tests.Runtime.SafetensorsTestFiles;

namespace Sora.Tests.Runtime;

public sealed class SafetensorsWriterTests
{
    [Fact]
    public void EveryDtypeRoundTripsBitExactIncludingNaNPayloadsAndStridedViews()
    {
        using var dir = new TempFolder();
        var rng = new Random(42);
        using var f32 = RandomBits(rng, DType.F32, 3, 5);
        using var f16 = RandomBits(rng, DType.F16, 2, 3, 7);
        using var bf16 = RandomBits(rng, DType.BF16, 17);
        using var scalar = RandomBits(rng, DType.BF16);
        using var empty = Tensor.ZerosHost(DType.F32, 0, 4);
        using var big = RandomBits(rng, DType.F16, 6, 9);
        // NaN payloads that a float round trip would change: signalling, negative, odd payloads
        var f16Bits = ((HostStorage)f16.Storage).AsSpan<ushort>();
        f16Bits[0] = 0x7C01; f16Bits[1] = 0xFE37; f16Bits[2] = 0x7DFF;
        var bfBits = ((HostStorage)bf16.Storage).AsSpan<ushort>();
        bfBits[0] = 0x7F81; bfBits[1] = 0xFFC1; bfBits[2] = 0x7FAB;
        var f32Bits = ((HostStorage)f32.Storage).AsSpan<uint>();
        f32Bits[0] = 0x7F800001; f32Bits[1] = 0xFFC12345;
        var strided = big.Permute(1, 0).Slice(0, 2, 5).Slice(1, 1, 4); // [5, 4], non-contiguous, offset
        Assert.False(strided.IsContiguous);

        var tensors = new (string, Tensor)[]
        {
            ("h.f16", f16), ("a.bf16", bf16), ("scalar", scalar), ("w.f32", f32), ("empty", empty), ("strided", strided),
        };
        string path = dir.File("t.safetensors");
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "é ünïcode" };
        SafetensorsWriter.Write(path, tensors.Select(p => KeyValuePair.Create(p.Item1, p.Item2)), meta);

        byte[] bytes = File.ReadAllBytes(path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, headerLength % 8);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(meta, file.Metadata);
        Assert.Equal(tensors.Select(p => p.Item1).Order(), file.Names.Order());
        foreach (var (name, source) in tensors)
        {
            var e = file.GetEntry(name);
            Assert.Equal(source.DType, e.DType);
            Assert.Equal(source.Shape, e.Shape);
            Assert.Equal(0, (8 + (long)headerLength + e.Begin) % DTypes.SizeOf(e.DType)); // aligned in the file
            Assert.Equal(LogicalBytes(source), file.GetBytes(name).ToArray());
            var back = file.Get(name);
            Assert.Equal(LogicalBytes(source), LogicalBytes(back));
        }
        Assert.Equal(0, file.Get("empty").ElementCount);
    }

    [Fact]
    public void TensorsLargerThanTheWriteChunkRoundTrip()
    {
        using var dir = new TempFolder();
        var rng = new Random(11);
        using var big = RandomBits(rng, DType.F32, 700, 500); // 1.4 MB, more than one 1 MiB chunk
        var transposed = big.Permute(1, 0);
        var sliced = big.Slice(1, 3, 400);
        string path = dir.File("big.safetensors");
        SafetensorsWriter.Write(path, new[] { KeyValuePair.Create("c", big), KeyValuePair.Create("t", transposed), KeyValuePair.Create("s", sliced) });
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(LogicalBytes(big), file.GetBytes("c").ToArray());
        Assert.Equal(LogicalBytes(transposed), file.GetBytes("t").ToArray());
        Assert.Equal(LogicalBytes(sliced), file.GetBytes("s").ToArray());
    }

    [Fact]
    public void HeaderIsSpacePaddedJson()
    {
        using var dir = new TempFolder();
        using var t = Tensor.FromArray(new float[] { 1, 2, 3 }, new[] { 3 });
        string path = dir.File("x.safetensors");
        SafetensorsWriter.Write(path, new[] { KeyValuePair.Create("x", t) });
        byte[] bytes = File.ReadAllBytes(path);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        string header = System.Text.Encoding.UTF8.GetString(bytes, 8, n);
        Assert.Equal("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", header.TrimEnd(' '));
        Assert.Equal(8 + n + 12, bytes.Length);
        Assert.Equal(new float[] { 1, 2, 3 }, Enumerable.Range(0, 3).Select(i => BitConverter.ToSingle(bytes, 8 + n + 4 * i)));
    }

    [Fact]
    public void FailedOrCancelledWriteLeavesNoFileAndKeepsTheOldOne()
    {
        using var dir = new TempFolder();
        string path = dir.File("model.safetensors");
        File.WriteAllText(path, "old contents");
        using var t = Tensor.FromArray(new float[] { 1, 2 }, new[] { 2 });

        IEnumerable<KeyValuePair<string, Tensor>> Failing()
        {
            yield return KeyValuePair.Create("a", t);
            throw new IOException("source broke");
        }
        Assert.Throws<IOException>(() => SafetensorsWriter.Write(path, Failing()));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, new[] { KeyValuePair.Create("a", t), KeyValuePair.Create("a", t) }));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, new[] { KeyValuePair.Create("d", new Tensor(new FakeDeviceStorage(), new[] { 4 })) }));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => SafetensorsWriter.Write(path, new[] { KeyValuePair.Create("a", t) }, null, cts.Token));
        Assert.ThrowsAny<OperationCanceledException>(() => SafetensorsWriter.Write(dir.File("new.safetensors"), new[] { KeyValuePair.Create("a", t) }, null, cts.Token));

        Assert.Equal("old contents", File.ReadAllText(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(dir.Path)); // no temp files, no new file

        SafetensorsWriter.Write(path, new[] { KeyValuePair.Create("a", t) }); // replaces the old file
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(new float[] { 1, 2 }, file.Get("a").ToFloatArray());
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void ShardedCheckpointReadsThroughItsIndex()
    {
        using var dir = new TempFolder();
        var rng = new Random(5);
        using var a = RandomBits(rng, DType.F32, 4, 3);
        using var b = RandomBits(rng, DType.BF16, 5);
        using var c = RandomBits(rng, DType.F16, 2, 2);
        SafetensorsWriter.Write(dir.File("m-00001-of-00002.safetensors"), new[] { KeyValuePair.Create("blocks.0.a", a), KeyValuePair.Create("blocks.0.b", b) });
        SafetensorsWriter.Write(dir.File("m-00002-of-00002.safetensors"), new[] { KeyValuePair.Create("head.c", c) });
        string index = dir.File("m.safetensors.index.json");
        File.WriteAllText(index, """
            {"metadata": {"total_size": 66},
             "weight_map": {"blocks.0.a": "m-00001-of-00002.safetensors", "blocks.0.b": "m-00001-of-00002.safetensors",
                            "head.c": "m-00002-of-00002.safetensors"}}
            """);

        foreach (string source in new[] { index, dir.Path })
        {
            using var ckpt = SafetensorsCheckpoint.Open(source);
            Assert.Equal(new[] { "blocks.0.a", "blocks.0.b", "head.c" }, ckpt.Names.Order());
            Assert.Equal(LogicalBytes(a), LogicalBytes(ckpt.Get("blocks.0.a")));
            Assert.Equal(LogicalBytes(b), LogicalBytes(ckpt.Get("blocks.0.b")));
            Assert.Equal(LogicalBytes(c), LogicalBytes(ckpt.Get("head.c")));
            Assert.EndsWith("m-00002-of-00002.safetensors", ckpt.FileOfTensor("head.c"));
            Assert.Equal(new[] { 2, 2 }, ckpt.GetEntry("head.c").Shape);
            var missing = Assert.Throws<SafetensorsException>(() => ckpt.Get("nope"));
            Assert.Equal("nope", missing.Tensor);
        }
    }

    [Theory]
    [InlineData("\"ghost\": \"m-00002-of-00002.safetensors\"", "ghost", "missing from shard")]
    [InlineData("\"head.c\": \"m-00001-of-00002.safetensors\"", "head.c", "listed twice")]
    [InlineData("\"extra\": \"../m-00002-of-00002.safetensors\"", "extra", "must be a file in the index's folder")]
    [InlineData("\"x\": \"gone.safetensors\"", null, "file not found")]
    [InlineData("\"x\": 3", "x", "not a string")]
    public void BrokenIndexesAreReportedByName(string extraEntry, string? tensor, string problem)
    {
        using var dir = new TempFolder();
        using var a = Tensor.FromArray(new float[] { 1 }, new[] { 1 });
        SafetensorsWriter.Write(dir.File("m-00001-of-00002.safetensors"), new[] { KeyValuePair.Create("a", a) });
        SafetensorsWriter.Write(dir.File("m-00002-of-00002.safetensors"), new[] { KeyValuePair.Create("head.c", a) });
        string index = dir.File("m.safetensors.index.json");
        File.WriteAllText(index, "{\"weight_map\": {\"a\": \"m-00001-of-00002.safetensors\", \"head.c\": \"m-00002-of-00002.safetensors\", " + extraEntry + "}}");
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsCheckpoint.Open(index));
        Assert.Equal(tensor, e.Tensor);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void ShardTensorMissingFromTheIndexIsReported()
    {
        using var dir = new TempFolder();
        using var a = Tensor.FromArray(new float[] { 1 }, new[] { 1 });
        SafetensorsWriter.Write(dir.File("s1.safetensors"), new[] { KeyValuePair.Create("a", a), KeyValuePair.Create("b", a) });
        File.WriteAllText(dir.File("s.safetensors.index.json"), """{"weight_map": {"a": "s1.safetensors"}}""");
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsCheckpoint.Open(dir.Path));
        Assert.Equal("b", e.Tensor);
        Assert.Contains("not listed in the index", e.Message);
    }

    [Fact]
    public void FoldersWithoutOneCheckpointAreReported()
    {
        using var dir = new TempFolder();
        var none = Assert.Throws<SafetensorsException>(() => SafetensorsCheckpoint.Open(dir.Path));
        Assert.Contains("holds no .safetensors file", none.Message);
        using var a = Tensor.FromArray(new float[] { 1 }, new[] { 1 });
        SafetensorsWriter.Write(dir.File("x.safetensors"), new[] { KeyValuePair.Create("a", a) });
        using (var one = SafetensorsCheckpoint.Open(dir.Path)) Assert.Equal(new float[] { 1 }, one.Get("a").ToFloatArray());
        SafetensorsWriter.Write(dir.File("y.safetensors"), new[] { KeyValuePair.Create("a", a) });
        var several = Assert.Throws<SafetensorsException>(() => SafetensorsCheckpoint.Open(dir.Path));
        Assert.Contains("several .safetensors files but no index", several.Message);
        File.WriteAllText(dir.File("m.safetensors.index.json"), """{"weight_map": {"a": "x.safetensors"}}""");
        using (var indexed = SafetensorsCheckpoint.Open(dir.Path)) // the index decides: y is not read
            Assert.EndsWith("x.safetensors", indexed.FileOfTensor("a"));
        File.WriteAllText(dir.File("m.safetensors.index.json"), """{"weight_map": {"a": "x.safetensors"}""");
        Assert.Contains("index is not valid JSON", Assert.Throws<SafetensorsException>(() => SafetensorsCheckpoint.Open(dir.Path)).Message);
    }

    private sealed class FakeDeviceStorage() : Storage(DType.F32, 4)
    {
        public override string Location => "fake:0";
        protected override void Release() { }
    }
}
