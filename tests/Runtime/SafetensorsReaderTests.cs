using Sora.Runtime;
using Sora.Runtime.Safetensors;
using Xunit;
using static Sora.Tests.Runtime.SafetensorsTestFiles;

namespace Sora.Tests.Runtime;

/// <summary>Hand-built headers, each with one defect, must fail with a SafetensorsException naming file, tensor and problem.</summary>
public sealed class SafetensorsReaderTests
{
    private const string A8 = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    private static SafetensorsException Fails(byte[] file, string? tensor, string problem)
    {
        using var dir = new TempFolder();
        string path = dir.File("bad.safetensors");
        File.WriteAllBytes(path, file);
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Equal(path, e.Path);
        Assert.StartsWith(path + ":", e.Message);
        Assert.Equal(tensor, e.Tensor);
        Assert.Contains(problem, e.Message);
        return e;
    }

    public static TheoryData<string, int, string?, string> BadHeaders => new()
    {
        { "{" + A8 + ",\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[8,16]}}", 16, "b", "dtype I64 is not supported" },
        { "{" + A8 + ",\"b\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]}}", 16, "b", "dtype F64 is not supported" },
        { "{" + A8 + "," + A8 + "}", 8, "a", "duplicate tensor name" },
        { "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "a", "duplicate key dtype" },
        { "{\"__metadata__\":{},\"__metadata__\":{}}", 0, null, "duplicate __metadata__" },
        { "{" + A8 + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "b", "overlaps tensor 'a'" },
        { "{" + A8 + ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16, "b", "belong to no tensor" },
        { "{" + A8 + "}", 12, null, "trailing bytes" },
        { "{" + A8 + "}", 5, "a", "runs past the 5-byte data section (truncated file?)" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "a", "does not fit the 8 bytes" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", 8, "a", "does not fit" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "a", "shape entries must be integers" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "a", "shape entries must be integers" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648],\"data_offsets\":[0,8]}}", 8, "a", "shape entries must be integers" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "a", "shape is not an array" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, "a", "data_offsets must be [begin, end]" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "a", "end before they begin" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e3]}}", 8, "a", "data_offsets entries must be integers" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551624]}}", 8, "a", "data_offsets entries must be integers" },
        { "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "a", "missing dtype" },
        { "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "a", "missing shape" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "a", "missing data_offsets" },
        { "{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "a", "dtype is not a string" },
        { "{\"a\":[1,2]}", 8, "a", "entry is not an object" },
        { "[" + "{" + A8 + "}]", 8, null, "header is not a JSON object" },
        { "{\"__metadata__\":{\"k\":1}," + A8 + "}", 8, null, "metadata 'k' is not a string" },
        { "{\"__metadata__\":[]," + A8 + "}", 8, null, "__metadata__ is not an object" },
        { "{" + A8, 8, null, "header is not valid JSON" },
        { "{" + A8 + ",}", 8, null, "header is not valid JSON" },
        { "{" + A8 + "}x", 8, null, "header is not valid JSON" },
        { "{" + A8 + "}\0\0\0", 8, null, "header is not valid JSON" },
        { "", 8, null, "header is not valid JSON" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[[2]],\"data_offsets\":[0,8]}}", 8, "a", "shape entries must be integers" },
        { "{\"a\":{\"x\":[[[[[[[[[[1]]]]]]]]]],\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, null, "header is not valid JSON" },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void MalformedHeadersAreReportedByFileAndTensor(string header, int dataBytes, string? tensor, string problem)
        => Fails(Raw(header, dataBytes), tensor, problem);

    [Fact]
    public void BadLengthFieldsAndShortFilesAreReported()
    {
        byte[] good = Raw("{" + A8 + "}", 8);
        Fails(good[..5], null, "shorter than the 8-byte header length");
        Fails(good[..30], null, "runs past the end of the 35-byte file".Replace("35", "30"));
        Fails(Raw("{" + A8 + "}", new byte[8], lengthField: ulong.MaxValue), null, "exceeds the 104857600-byte limit");
        Fails(Raw("{" + A8 + "}", new byte[8], lengthField: 1UL << 40), null, "exceeds the 104857600-byte limit");
        byte[] badUtf8 = Raw("{\"aZ\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
        badUtf8[8 + 3] = 0xFF; // the 'Z' of the name becomes a byte that is never valid UTF-8
        Fails(badUtf8, null, "not valid");
        var missing = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open("/nonexistent/x.safetensors"));
        Assert.Contains("file not found", missing.Message);
    }

    [Fact]
    public void PaddingZeroDataAndZeroElementTensorsAreAccepted()
    {
        using var dir = new TempFolder();
        // a header of only metadata and no data bytes at all, padded with spaces like Python's writer does
        string path = dir.File("empty.safetensors");
        File.WriteAllBytes(path, Raw("{\"__metadata__\":{\"format\":\"pt\"}}       ", 0));
        using (var f = SafetensorsFile.Open(path))
        {
            Assert.Empty(f.Names);
            Assert.Equal("pt", f.Metadata["format"]);
        }
        // zero-element tensors, a null metadata and an unknown entry key (ignored, as the reference reader does)
        File.WriteAllBytes(path, Raw("{\"__metadata__\":null,\"z\":{\"dtype\":\"BF16\",\"shape\":[0,3],\"data_offsets\":[0,0],\"extra\":{\"x\":[1]}}," +
            "\"s\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,2]},\"z2\":{\"dtype\":\"F32\",\"shape\":[4,0],\"data_offsets\":[2,2]}}  ", new byte[] { 0x00, 0x3C }));
        using (var f = SafetensorsFile.Open(path))
        {
            Assert.Equal(new[] { "z", "s", "z2" }, f.Names);
            var z = f.Get("z");
            Assert.Equal(new[] { 0, 3 }, z.Shape);
            Assert.Empty(z.ToFloatArray());
            Assert.Equal(0, f.Get("z2").ElementCount);
            Assert.Equal(new float[] { 1 }, f.Get("s").ToFloatArray()); // 0x3C00 = 1.0 in f16
        }
    }

    [Fact]
    public void TensorsFromADisposedFileCannotBeRead()
    {
        using var dir = new TempFolder();
        string path = dir.File("a.safetensors");
        File.WriteAllBytes(path, Raw("{" + A8 + "}", 8));
        var f = SafetensorsFile.Open(path);
        var t = f.Get("a");
        Assert.Equal(2, t.ToFloatArray().Length);
        f.Dispose();
        f.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.ToFloatArray());
        Assert.Throws<ObjectDisposedException>(() => f.Get("a"));
        var e = Assert.Throws<SafetensorsException>(() => f.GetEntry("b"));
        Assert.Equal("b", e.Tensor);
    }
}
