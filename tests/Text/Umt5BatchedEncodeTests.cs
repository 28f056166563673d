using Sora.Kernels.Cpu;
using Sora.Native.Text;
using Xunit;
using Xunit.Abstractions;

namespace Sora.Tests.Text;

/// <summary>
/// Several prompts through the UMT5 encoder in one pass (<see cref="Umt5Encoder.EncodePadded(IReadOnlyList{int[]}, int)"/>)
/// equal each prompt encoded alone, zero rows after the tokens included; allocations are poisoned.
/// </summary>
public class Umt5BatchedEncodeTests(ITestOutputHelper output)
{
    [Fact]
    public void Prompts_of_different_lengths_encoded_together_equal_each_alone()
    {
        using var backend = new PoisoningBackend(new CpuBackend());
        using var encoder = Umt5Encoder.Load(TextFixtures.TextEncoderDir, backend);
        var rng = new Random(7);
        int[][] prompts = new[] { 1, 9, 30, 4 }.Select(n => Enumerable.Range(0, n).Select(_ => 2 + rng.Next(encoder.Config.VocabSize - 2)).ToArray()).ToArray();
        var together = encoder.EncodePadded(prompts, 40);
        try
        {
            for (int b = 0; b < prompts.Length; b++)
            {
                using var alone = encoder.EncodePadded(prompts[b], 40);
                Assert.Equal(alone.Shape, together[b].Shape);
                float[] expected = backend.ToHost(alone).ToFloatArray(), actual = backend.ToHost(together[b]).ToFloatArray();
                Assert.DoesNotContain(actual, float.IsNaN);
                Assert.All(actual.Skip(prompts[b].Length * encoder.Config.DModel), v => Assert.Equal(0f, v));
                double error = TextFixtures.RelativeError(actual, expected.Select(v => (double)v).ToArray());
                output.WriteLine($"prompt {b} ({prompts[b].Length} ids): relative error {error:E2} against it alone");
                Assert.True(error < 1e-6, $"prompt {b}: relative error {error:E2}");
            }
        }
        finally
        {
            foreach (var t in together) t.Dispose();
        }
    }

    [Fact]
    public void A_prompt_longer_than_the_padded_length_is_refused_naming_it()
    {
        using var backend = new CpuBackend();
        using var encoder = Umt5Encoder.Load(TextFixtures.TextEncoderDir, backend);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => encoder.EncodePadded([[3, 4], [3, 4, 5, 6]], 3));
        Assert.Contains("prompt 1", e.Message);
    }
}
