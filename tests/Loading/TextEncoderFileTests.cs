using Sora.Kernels.Cpu;
using Sora.Native.Loading;
using Sora.Native.Text;
using Sora.Tests.Text;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Loading;

/// <summary>The UMT5 encoder from one file as ComfyUI stores it (Hugging Face names under a prefix, no config).</summary>
public sealed class TextEncoderFileTests
{
    [Fact]
    public void A_prefixed_single_file_infers_the_config_and_encodes_like_the_folder()
    {
        using var dir = new TempDir();
        var tensors = ReadAll(Path.Combine(TextFixtures.TextEncoderDir, "model.safetensors"));
        string file = Path.Combine(dir.Path, "umt5_tiny.safetensors");
        WriteSafetensors(file, tensors.Select(kv => ("text_encoders.umt5xxl.transformer." + kv.Key, kv.Value.Shape)).ToList(),
            (n, _) => tensors[n["text_encoders.umt5xxl.transformer.".Length..]].Data);

        var (source, inferred) = WanComponents.TextEncoder(file);
        source.Dispose();
        Assert.Equal(Umt5Config.Load(Path.Combine(TextFixtures.TextEncoderDir, "config.json")), inferred);

        var t = TextFixtures.ReadSafetensors(Path.Combine(TextFixtures.Root, "text_encoder_case.safetensors"));
        var (shape, ids) = t["input_ids"];
        int length = shape[1];
        int valid = (int)t["attention_mask"].Values.Take(length).Sum();
        var row = ids.Take(valid).Select(v => (int)v).ToArray();
        using var backend = new PoisoningBackend(new CpuBackend());
        using var encoder = Umt5Encoder.Load(file, backend);
        using var result = encoder.Encode(row);
        var actual = backend.ToHost(result).ToFloatArray();
        double error = TextFixtures.RelativeError(actual, t["expected"].Values.AsSpan(0, actual.Length));
        Console.WriteLine($"UMT5 from a prefixed single file: relative error {error:E2}");
        Assert.True(error < 1e-4, $"relative error {error:E2}");
    }
}
