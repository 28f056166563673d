using Sora.Runtime.Gguf;
using Sora.Runtime.Safetensors;
using Xunit;
using Xunit.Abstractions;

namespace Sora.Tests.Runtime;

/// <summary>
/// The reference quantisers against ggml's: tests/fixtures/gguf/source.safetensors quantised here must give the bytes
/// ggml's quantize_row_*_ref wrote into the fixture files, and in any case an error against the source within 1.1×
/// of ggml's.
/// </summary>
public sealed class GgufQuantizeTests(ITestOutputHelper output)
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "fixtures", "gguf");

    public static readonly TheoryData<string> FileTypes = new() { "F16", "BF16", "Q8_0", "Q4_K", "Q5_K", "Q6_K" };

    private static byte[] Quantise(GgmlType type, float[] values)
    {
        var bytes = new byte[GgmlTypes.ByteCount(type, values.Length)];
        GgmlQuantize.Blocks(type, values, bytes);
        return bytes;
    }

    [Theory]
    [MemberData(nameof(FileTypes))]
    public void SourceQuantisesToTheBytesGgmlWrote(string fileType)
    {
        using var gguf = GgufFile.Open(Path.Combine(Dir, $"wan-tiny-{fileType}.gguf"));
        using var source = SafetensorsFile.Open(Path.Combine(Dir, "source.safetensors"));
        foreach (var t in gguf.Tensors)
        {
            var ours = Quantise(t.Type, source.Get(t.Name).ToFloatArray());
            var ggml = gguf.GetBytes(t.Name).ToArray();
            int blockBytes = GgmlTypes.BlockBytes(t.Type);
            int differing = Enumerable.Range(0, ours.Length / blockBytes).Count(b => !ours.AsSpan(b * blockBytes, blockBytes).SequenceEqual(ggml.AsSpan(b * blockBytes, blockBytes)));
            Assert.True(differing == 0, $"{fileType} {t.Name} ({GgmlTypes.Name(t.Type)}): {differing} of {ours.Length / blockBytes} blocks differ from ggml's");
        }
    }

    /// <summary>‖dequant(quant(source)) − source‖ / ‖source‖ per 2-D weight, against the same for ggml's file.</summary>
    [Theory]
    [MemberData(nameof(FileTypes))]
    public void QuantisationErrorIsWithin1Point1TimesGgmls(string fileType)
    {
        using var gguf = GgufFile.Open(Path.Combine(Dir, $"wan-tiny-{fileType}.gguf"));
        using var source = SafetensorsFile.Open(Path.Combine(Dir, "source.safetensors"));
        foreach (var t in gguf.Tensors.Where(t => t.Shape.Length == 2))
        {
            var src = source.Get(t.Name).ToFloatArray();
            var ours = new float[src.Length];
            Array.Fill(ours, float.NaN);
            GgmlDequantize.Blocks(t.Type, Quantise(t.Type, src), ours);
            var theirs = gguf.Get(t.Name).ToFloatArray();
            double e1 = RelativeError(ours, src), e2 = RelativeError(theirs, src);
            output.WriteLine($"{fileType} {t.Name}: ours {e1:E4}, ggml {e2:E4}");
            Assert.True(e1 <= 1.1 * e2, $"{t.Name}: relative error {e1:E4} is over 1.1x ggml's {e2:E4}");
        }
    }

    private static double RelativeError(float[] got, float[] want)
    {
        double err = 0, norm = 0;
        for (int i = 0; i < got.Length; i++)
        {
            Assert.False(float.IsNaN(got[i]), $"element {i} is NaN");
            err += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
            norm += (double)want[i] * want[i];
        }
        return Math.Sqrt(err / norm);
    }

    /// <summary>Blocks ggml's quantisers treat specially: all zero, constant, one outlier, all negative; each round-trips close and without NaN.</summary>
    [Theory]
    [InlineData(GgmlType.Q8_0, 0.01)]
    [InlineData(GgmlType.Q4_K, 0.12)]
    [InlineData(GgmlType.Q5_K, 0.06)]
    [InlineData(GgmlType.Q6_K, 0.04)]
    public void EdgeBlocksRoundTrip(GgmlType type, double tolerance)
    {
        var rng = new Random(11);
        var blocks = new List<float[]>
        {
            new float[256],
            Enumerable.Repeat(0.37f, 256).ToArray(),
            Enumerable.Range(0, 256).Select(i => i == 77 ? 50f : (float)(rng.NextDouble() - 0.5) * 0.01f).ToArray(),
            Enumerable.Range(0, 256).Select(_ => -(float)rng.NextDouble() - 0.1f).ToArray(),
            Enumerable.Range(0, 256).Select(_ => (float)(rng.NextDouble() * 2 - 1) * 1e-3f).ToArray(),
        };
        foreach (var x in blocks)
        {
            var back = new float[256];
            Array.Fill(back, float.NaN);
            GgmlDequantize.Blocks(type, Quantise(type, x), back);
            if (x.All(v => v == 0)) { Assert.All(back, v => Assert.Equal(0f, v)); continue; }
            double rel = RelativeError(back, x);
            Assert.True(rel <= tolerance, $"{type}: relative error {rel:E3} over {tolerance} for a block starting {x[0]}");
        }
    }

    [Fact]
    public void RejectsTypesWithoutAQuantiserAndPartialBlocks()
    {
        Assert.Throws<NotSupportedException>(() => GgmlQuantize.Blocks(GgmlType.Q3_K, new float[256], new byte[110]));
        Assert.Throws<ArgumentException>(() => GgmlQuantize.Blocks(GgmlType.Q8_0, new float[33], new byte[68]));
        Assert.Throws<ArgumentException>(() => GgmlQuantize.Blocks(GgmlType.Q4_K, new float[256], new byte[143]));
    }
}
