using System.Text.Json.Nodes;
using Sora.Kernels.Cpu;
using Sora.Kernels.Gpu;
using Sora.Native.Loading;
using Sora.Native.Text;
using Sora.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace Sora.Tests.Text;

/// <summary>
/// The UMT5 encoder against the fixtures (produced by the Wan2.1 T5 implementation under HF names):
/// text_encoder_case (2 padded rows with masks) and prompt_case (text → ids → embeddings).
/// Only rows inside the mask are compared; the reference's padded rows are don't-care.
/// </summary>
public class Umt5EncoderTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    private sealed record EncoderCase(int[][] Ids, int[] ValidLengths, double[] Expected, int DModel);

    private static EncoderCase ReadEncoderCase()
    {
        var t = TextFixtures.ReadSafetensors(Path.Combine(TextFixtures.Root, "text_encoder_case.safetensors"));
        var (shape, ids) = t["input_ids"];
        var mask = t["attention_mask"].Values;
        int rows = shape[0], length = shape[1];
        var idRows = new int[rows][];
        var valid = new int[rows];
        for (int b = 0; b < rows; b++)
        {
            idRows[b] = ids.Skip(b * length).Take(length).Select(v => (int)v).ToArray();
            valid[b] = (int)mask.Skip(b * length).Take(length).Sum();
            // The encoder takes the mask as a valid length: the fixture's masks must be a prefix of ones.
            Assert.All(mask.Skip(b * length).Take(length).Select((m, i) => (m, i)), p => Assert.Equal(p.i < valid[b] ? 1.0 : 0.0, p.m));
        }
        return new EncoderCase(idRows, valid, t["expected"].Values, t["expected"].Shape[2]);
    }

    /// <summary>Rows 0..valid−1 of each batch row of a [B, L, d] array, flattened.</summary>
    private static T[] ValidRows<T>(T[] all, EncoderCase c)
    {
        int length = c.Ids[0].Length;
        var rows = new List<T>();
        for (int b = 0; b < c.Ids.Length; b++)
            rows.AddRange(all.AsSpan(b * length * c.DModel, c.ValidLengths[b] * c.DModel).ToArray());
        return rows.ToArray();
    }

    [Fact]
    public void PaddedBatchWithMaskMatchesReference()
    {
        var c = ReadEncoderCase();
        using var backend = new PoisoningBackend(new CpuBackend());
        using var encoder = Umt5Encoder.Load(TextFixtures.TextEncoderDir, backend);
        using var result = encoder.EncodeBatch(c.Ids, c.ValidLengths);
        Assert.Equal([c.Ids.Length, c.Ids[0].Length, c.DModel], result.Shape);
        float[] actual = ValidRows(backend.ToHost(result).ToFloatArray(), c);
        double err = TextFixtures.RelativeError(actual, ValidRows(c.Expected, c));
        output.WriteLine($"text_encoder_case (batch, masked): rel err {err:E2}");
        Assert.True(err < Tolerance, $"relative error {err:E3}");
    }

    [Fact]
    public void EachRowAloneWithoutPaddingMatchesReference()
    {
        // Running only the real tokens (what the pipeline does) gives the same real-row outputs as the masked batch.
        var c = ReadEncoderCase();
        using var backend = new PoisoningBackend(new CpuBackend());
        using var encoder = Umt5Encoder.Load(TextFixtures.TextEncoderDir, backend);
        int length = c.Ids[0].Length;
        for (int b = 0; b < c.Ids.Length; b++)
        {
            using var result = encoder.Encode(c.Ids[b].AsSpan(0, c.ValidLengths[b]));
            Assert.Equal([c.ValidLengths[b], c.DModel], result.Shape);
            float[] actual = backend.ToHost(result).ToFloatArray();
            double err = TextFixtures.RelativeError(actual, c.Expected.AsSpan(b * length * c.DModel, actual.Length));
            output.WriteLine($"row {b} ({c.ValidLengths[b]} tokens): rel err {err:E2}");
            Assert.True(err < Tolerance, $"row {b}: relative error {err:E3}");
        }
    }

    [Fact]
    public void PromptTextToEmbeddingsMatchesPipelineReference()
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(TextFixtures.Root, "prompt_case.json")))!;
        var t = TextFixtures.ReadSafetensors(Path.Combine(TextFixtures.Root, "prompt_case.safetensors"));
        var tokenizer = SentencePieceTokenizer.Load(TextFixtures.TokenizerDir);
        int[] ids = tokenizer.EncodeForModel((string)json["prompt"]!);

        using var backend = new PoisoningBackend(new CpuBackend());
        using var encoder = Umt5Encoder.Load(TextFixtures.TextEncoderDir, backend);
        var (shape, expected) = t["prompt_embeds"];
        using var result = encoder.EncodePadded(ids, shape[1]);
        Assert.Equal([shape[1], shape[2]], result.Shape);
        float[] actual = backend.ToHost(result).ToFloatArray();
        double err = TextFixtures.RelativeError(actual, expected);
        output.WriteLine($"prompt_case embeds ({ids.Length} tokens padded to {shape[1]}): rel err {err:E2}");
        Assert.True(err < Tolerance, $"relative error {err:E3}");
        // The zero rows are exact zeros, as the pipeline builds them.
        Assert.All(actual.Skip(ids.Length * shape[2]), v => Assert.Equal(0f, v));
        Assert.Throws<ArgumentOutOfRangeException>(() => encoder.EncodePadded(ids, ids.Length - 1));
    }

    [Fact]
    public void SmallestCaseOnIlgpuCpuAccelerator()
    {
        // The ILGPU kernels on ILGPU's CPU accelerator (slow: the shortest row only). Weights go to the device.
        var c = ReadEncoderCase();
        using var backend = new PoisoningBackend(IlgpuBackend.CreateCpu());
        using var encoder = Umt5Encoder.Load(TextFixtures.TextEncoderDir, backend);
        using var result = encoder.Encode(c.Ids[0].AsSpan(0, c.ValidLengths[0]));
        float[] actual = backend.ToHost(result).ToFloatArray();
        double err = TextFixtures.RelativeError(actual, c.Expected.AsSpan(0, actual.Length));
        output.WriteLine($"ilgpu-cpu row 0 ({c.ValidLengths[0]} tokens): rel err {err:E2}");
        Assert.True(err < Tolerance, $"relative error {err:E3}");
    }

    [Fact]
    public void Bf16WeightsMatchTheirF32Values()
    {
        // The same weights stored as BF16 and as F32 holding the BF16-rounded values must encode alike:
        // the kernels convert bf16 exactly, so only summation order may differ.
        string dir = Directory.CreateTempSubdirectory("sora-umt5-bf16-").FullName;
        try
        {
            var weights = TextFixtures.ReadSafetensors(Path.Combine(TextFixtures.TextEncoderDir, "model.safetensors"));
            var rounded = weights.ToDictionary(w => w.Key,
                w => (w.Value.Shape, w.Value.Values.Select(v => (double)BFloat16.ToFloat(BFloat16.FromFloat((float)v))).ToArray()));
            string bf16Dir = Directory.CreateDirectory(Path.Combine(dir, "bf16")).FullName;
            string f32Dir = Directory.CreateDirectory(Path.Combine(dir, "f32")).FullName;
            foreach (var d in new[] { bf16Dir, f32Dir })
                File.Copy(Path.Combine(TextFixtures.TextEncoderDir, "config.json"), Path.Combine(d, "config.json"));
            TextFixtures.WriteSafetensors(Path.Combine(bf16Dir, "model.safetensors"), weights, "BF16");
            TextFixtures.WriteSafetensors(Path.Combine(f32Dir, "model.safetensors"), rounded, "F32");

            var c = ReadEncoderCase();
            using var backend = new PoisoningBackend(new CpuBackend());
            float[] Run(string modelDir)
            {
                using var encoder = Umt5Encoder.Load(modelDir, backend);
                using var result = encoder.EncodeBatch(c.Ids, c.ValidLengths);
                return ValidRows(backend.ToHost(result).ToFloatArray(), c);
            }
            float[] fromBf16 = Run(bf16Dir);
            float[] fromF32 = Run(f32Dir);
            double err = TextFixtures.RelativeError(fromBf16, fromF32.Select(v => (double)v).ToArray());
            output.WriteLine($"bf16 storage vs f32 of the same values: rel err {err:E2}");
            Assert.True(err < 1e-5, $"relative error {err:E3}");
            // And rounding the weights to bf16 does change the result (the comparison above is not vacuous).
            double vsReference = TextFixtures.RelativeError(fromBf16, ValidRows(c.Expected, c));
            output.WriteLine($"bf16 weights vs the f32 reference: rel err {vsReference:E2}");
            Assert.True(vsReference > 1e-4);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void IdsOutsideTheVocabularyAreRejected()
    {
        using var backend = new PoisoningBackend(new CpuBackend());
        using var encoder = Umt5Encoder.Load(TextFixtures.TextEncoderDir, backend);
        int vocab = encoder.Config.VocabSize;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => encoder.Encode([3, vocab, 1]));
        Assert.Contains($"token id {vocab} at position 1", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => encoder.Encode([-1]));
        Assert.Throws<ArgumentException>(() => encoder.Encode([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => encoder.EncodeBatch([[3, 4], [5, 6]], [2, 3]));
        Assert.Throws<ArgumentException>(() => encoder.EncodeBatch([[3, 4], [5]], [2, 1]));
    }

    [Fact]
    public void DisposeReleasesTheWeights()
    {
        using var backend = new PoisoningBackend(new CpuBackend());
        var encoder = Umt5Encoder.Load(TextFixtures.TextEncoderDir, backend);
        encoder.Encode([3, 4, 1]).Dispose();
        encoder.Dispose();
        Assert.Throws<ObjectDisposedException>(() => encoder.Encode([3, 4, 1]));
    }

    [Theory]
    [InlineData(1, "unexpected tensor", "encoder.block.1.")]
    [InlineData(3, "missing tensor", "encoder.block.2.")]
    public void WeightsThatDoNotFitTheConfigAreNamed(int numLayers, string problem, string tensorPrefix)
    {
        string dir = Directory.CreateTempSubdirectory("sora-umt5-").FullName;
        try
        {
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(TextFixtures.TextEncoderDir, "config.json")))!;
            config["num_layers"] = numLayers;
            File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
            File.Copy(Path.Combine(TextFixtures.TextEncoderDir, "model.safetensors"), Path.Combine(dir, "model.safetensors"));
            using var backend = new PoisoningBackend(new CpuBackend());
            var e = Assert.Throws<ModelLoadException>(() => Umt5Encoder.Load(dir, backend));
            Assert.Contains(problem, e.Message);
            Assert.Contains(tensorPrefix, e.Message);
            Assert.Contains(dir, e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void RelativePositionBucketsFollowT5()
    {
        // Table of f(|rp|) from the architecture notes (wan-architecture.md 4.2), 32 buckets, max distance 128:
        // key before query → f, key after query → 16 + f.
        (int From, int To, int F)[] table =
        [
            (0, 0, 0), (1, 1, 1), (7, 7, 7), (8, 11, 8), (12, 15, 9), (16, 22, 10), (23, 31, 11),
            (32, 45, 12), (46, 63, 13), (64, 90, 14), (91, 600, 15),
        ];
        int length = 601;
        int[] all = RelativePosition.Buckets(length, 32, 128);
        foreach (var (from, to, f) in table)
            for (int a = from; a <= to; a++)
            {
                Assert.Equal(f, all[-a + length - 1]);
                if (a > 0) Assert.Equal(16 + f, all[a + length - 1]);
            }
        for (int a = 2; a <= 6; a++) Assert.Equal(a, all[-a + length - 1]);
    }
}
