using Sora.Runtime;
using Sora.Runtime.Gguf;
using Sora.Runtime.Safetensors;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels;

/// <summary>
/// tests/fixtures/gguf through a backend: every tensor of every file, uploaded as raw blocks and expanded by the
/// backend's own decoder (<see cref="IBackend.Dequantize"/>), equals ggml's to_float bit for bit.
/// </summary>
public static class WeightFixtures
{
    public static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "fixtures", "gguf");

    public static readonly TheoryData<string> FileTypes = new() { "F16", "BF16", "Q8_0", "Q5_0", "Q5_1", "Q4_0", "Q4_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K" };

    public static void EveryTensorExpandsToGgmlsValues(IBackend backend, string fileType)
    {
        using var gguf = GgufFile.Open(Path.Combine(Dir, $"wan-tiny-{fileType}.gguf"));
        using var expected = SafetensorsFile.Open(Path.Combine(Dir, $"wan-tiny-{fileType}.expected.safetensors"));
        Assert.Equal(6, gguf.Tensors.Count);
        foreach (var info in gguf.Tensors)
        {
            int rows = info.Shape[0], cols = checked((int)(info.ElementCount / rows));
            using var bytes = backend.Upload(gguf.GetBytes(info.Name).ToArray());
            var weight = new BlockWeight(info.Type, bytes, rows, cols);
            using var y = Poisoned(backend, rows, cols);
            backend.Dequantize(weight, y);
            WeightChecks.AssertBits(expected.Get(info.Name).ToFloatArray(), Download(backend, y), $"{fileType} {info.Name} ({GgmlTypes.Name(info.Type)})");
        }
    }
}
