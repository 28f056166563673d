using Sora.Kernels.Cpu;
using Sora.Runtime;
using Sora.Runtime.Safetensors;
using Xunit;
using static Sora.Tests.Runtime.SafetensorsTestFiles;

namespace Sora.Tests.Runtime;

/// <summary>
/// The 8-bit float dtypes: every code of both formats against a float64 decode written from the format definitions,
/// safetensors files with F8 tensors (the single-file-small fixtures and hand-made ones), and clear errors on the
/// paths that do not take them.
/// </summary>
public sealed class Fp8Tests
{
    private static readonly string FixtureDir = Path.Combine(AppContext.BaseDirectory, "fixtures", "single-file-small");

    /// <summary>e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities; S.1111.111 is NaN.</summary>
    private static double E4M3(int code)
    {
        int e = (code >> 3) & 0xF, m = code & 7;
        double v = e == 0xF && m == 7 ? double.NaN : e == 0 ? m / 8.0 * Math.Pow(2, -6) : (1 + m / 8.0) * Math.Pow(2, e - 7);
        return (code & 0x80) != 0 ? -v : v;
    }

    /// <summary>e5m2: 1 sign, 5 exponent (bias 15), 2 mantissa bits; exponent 31 is infinity (m = 0) or NaN.</summary>
    private static double E5M2(int code)
    {
        int e = (code >> 2) & 0x1F, m = code & 3;
        double v = e == 0x1F ? (m == 0 ? double.PositiveInfinity : double.NaN) : e == 0 ? m / 4.0 * Math.Pow(2, -14) : (1 + m / 4.0) * Math.Pow(2, e - 15);
        return (code & 0x80) != 0 ? -v : v;
    }

    private static void AssertDecodes(double expected, float got, int code)
    {
        if (double.IsNaN(expected)) Assert.True(float.IsNaN(got), $"code 0x{code:X2}: {got}, expected NaN");
        else
        {
            Assert.True(expected == got, $"code 0x{code:X2}: {got}, expected {expected}");
            Assert.Equal(double.IsNegative(expected), float.IsNegative(got));
        }
    }

    [Fact]
    public void EveryE4M3CodeDecodesExactly()
    {
        for (int c = 0; c < 256; c++) AssertDecodes(E4M3(c), Float8.E4M3ToFloat((byte)c), c);
        Assert.Equal(448f, Float8.E4M3ToFloat(0x7E));
        Assert.Equal(256f, Float8.E4M3ToFloat(0x78)); // exponent 15 is finite in e4m3fn
        Assert.Equal(MathF.Pow(2, -9), Float8.E4M3ToFloat(0x01));
        Assert.True(float.IsNaN(Float8.E4M3ToFloat(0x7F)) && float.IsNaN(Float8.E4M3ToFloat(0xFF)));
        Assert.Equal(2, Enumerable.Range(0, 256).Count(c => float.IsNaN(Float8.E4M3ToFloat((byte)c))));
        Assert.True(float.IsNegative(Float8.E4M3ToFloat(0x80)) && Float8.E4M3ToFloat(0x80) == 0);
    }

    [Fact]
    public void EveryE5M2CodeDecodesExactly()
    {
        for (int c = 0; c < 256; c++) AssertDecodes(E5M2(c), Float8.E5M2ToFloat((byte)c), c);
        Assert.Equal(57344f, Float8.E5M2ToFloat(0x7B));
        Assert.Equal(float.PositiveInfinity, Float8.E5M2ToFloat(0x7C));
        Assert.Equal(float.NegativeInfinity, Float8.E5M2ToFloat(0xFC));
        Assert.Equal(MathF.Pow(2, -16), Float8.E5M2ToFloat(0x01));
        Assert.Equal(6, Enumerable.Range(0, 256).Count(c => float.IsNaN(Float8.E5M2ToFloat((byte)c))));
    }

    [Theory]
    [InlineData("wan2.1_t2v_tiny_fp8_e4m3fn.safetensors", 20)]
    [InlineData("wan2.1_t2v_tiny_fp8_scaled.safetensors", 21)]
    public void FixtureFilesOpenAndTheirF8TensorsDecodeLikeTheFloat64Reference(string file, int f8Count)
    {
        using var f = SafetensorsFile.Open(Path.Combine(FixtureDir, file));
        var f8 = f.Entries.Where(e => e.DType == DType.F8E4M3).ToArray();
        Assert.Equal(f8Count, f8.Length);
        Assert.Contains(f8, e => e.Name == "blocks.0.self_attn.q.weight");
        foreach (var e in f8)
        {
            var t = f.Get(e.Name);
            Assert.Equal(e.Shape, t.Shape);
            var bytes = f.GetBytes(e.Name);
            Assert.Equal(t.ElementCount, bytes.Length);
            var values = t.ToFloatArray();
            var slice = t.Rank == 2 ? t.Slice(0, 1, t.Dim(0) - 1).ToFloatArray() : null; // the strided/offset path
            for (int i = 0; i < values.Length; i++)
            {
                Assert.True(float.IsFinite(values[i]), $"{e.Name}[{i}] = {values[i]}");
                Assert.True(E4M3(bytes[i]) == values[i], $"{e.Name}[{i}]: code 0x{bytes[i]:X2} read as {values[i]}, expected {E4M3(bytes[i])}");
            }
            if (slice is not null) Assert.Equal(values.AsSpan(t.Dim(1)).ToArray(), slice);
            if (e.Name != "scaled_fp8") Assert.Contains(values, v => v != 0); // the marker tensor of scaled files is two zero bytes
        }
        foreach (var e in f.Entries.Where(e => e.DType != DType.F8E4M3)) Assert.Equal(e.ElementCount, f.Get(e.Name).ToFloatArray().Length);
    }

    [Fact]
    public void HandMadeFilesWithBothFormatsOpenAndSizesAreChecked()
    {
        using var dir = new TempFolder();
        var data = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        string path = dir.File("f8.safetensors");
        File.WriteAllBytes(path, Raw("{\"a\":{\"dtype\":\"F8_E5M2\",\"shape\":[16,8],\"data_offsets\":[0,128]},\"b\":{\"dtype\":\"F8_E4M3\",\"shape\":[128],\"data_offsets\":[128,256]}}", data));
        using (var f = SafetensorsFile.Open(path))
        {
            var a = f.Get("a").ToFloatArray();
            var b = f.Get("b").ToFloatArray();
            Assert.Equal(DType.F8E5M2, f.GetEntry("a").DType);
            for (int i = 0; i < 128; i++)
            {
                AssertDecodes(E5M2(i), a[i], i);
                AssertDecodes(E4M3(128 + i), b[i], 128 + i);
            }
            // written back unchanged: the writer copies F8 bytes as they are
            string copy = dir.File("copy.safetensors");
            SafetensorsWriter.Write(copy, new[] { KeyValuePair.Create("a", f.Get("a")), KeyValuePair.Create("b", f.Get("b")) });
            using var back = SafetensorsFile.Open(copy);
            Assert.Equal(f.GetBytes("a").ToArray(), back.GetBytes("a").ToArray());
            Assert.Equal(DType.F8E4M3, back.GetEntry("b").DType);
        }
        string bad = dir.File("bad.safetensors");
        File.WriteAllBytes(bad, Raw("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4));
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(bad));
        Assert.Contains("does not fit the 4 bytes", e.Message);
        File.WriteAllBytes(bad, Raw("{\"a\":{\"dtype\":\"F8_E4M3FNUZ\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4));
        Assert.Contains("F8_E4M3 and F8_E5M2 are", Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(bad)).Message);
    }

    [Fact]
    public void PathsThatDoNotTakeF8FailClearly()
    {
        Assert.Equal(1, DTypes.SizeOf(DType.F8E4M3));
        Assert.Equal("F8_E5M2", DTypes.SafetensorsName(DType.F8E5M2));
        var write = Assert.Throws<NotSupportedException>(() => Tensor.FromArray(new float[] { 1, 2 }, new[] { 2 }, DType.F8E4M3));
        Assert.Contains("F8E4M3", write.Message);

        using var backend = new CpuBackend(1);
        using var f8 = Tensor.ZerosHost(DType.F8E4M3, 4, 4);
        using var f32 = Tensor.ZerosHost(DType.F32, 4, 4);
        Assert.Contains("F8E4M3", Assert.Throws<NotSupportedException>(() => backend.Copy(f8, f32)).Message);
        Assert.Contains("F8E4M3", Assert.Throws<NotSupportedException>(() => backend.Copy(f8.Permute(1, 0), f32)).Message);
        Assert.Contains("F8E5M2", Assert.Throws<NotSupportedException>(() => backend.Copy(f32, Tensor.ZerosHost(DType.F8E5M2, 4, 4))).Message);
        using var same = Tensor.ZerosHost(DType.F8E4M3, 4, 4);
        ((HostStorage)f8.Storage).AsSpan<byte>().Fill(0x38);
        backend.Copy(f8, same); // a byte copy between F8 tensors of one dtype is fine
        Assert.All(same.ToFloatArray(), v => Assert.Equal(1f, v));
    }
}
