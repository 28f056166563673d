using Xunit;

namespace Sora.Tests.Cli;

public sealed class EncodePromptTests : IDisposable
{
    private readonly string _dir = CliRunner.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void EmbeddingMatchesTheReferenceWithZeroPadding()
    {
        var outPath = Path.Combine(_dir, "p.safetensors");
        var r = CliRunner.Run("encode-prompt", "--model", CliRunner.Model, "--device", "cpu",
            "A red circle moving left on a black background.", "--out", outPath);
        Assert.True(r.Code == 0, r.Err);
        var caseFile = Path.Combine(CliRunner.Fixtures, "prompt_case.safetensors");
        var (expectedShape, expected) = MiniSafetensors.ReadF32(caseFile, "prompt_embeds");
        var (shape, actual) = MiniSafetensors.ReadF32(outPath, "prompt_embeds");
        Assert.Equal(expectedShape, shape);
        Assert.InRange(MiniSafetensors.RelativeError(actual, expected), 0, 1e-4);
        // Rows past the 27 tokens (26 ids + </s>) are exactly zero, as the pipeline builds them.
        int d = shape[2], tokens = MiniSafetensors.Header(caseFile)["prompt_ids"].Shape[0];
        Assert.All(actual[(tokens * d)..], v => Assert.Equal(0f, v));
        Assert.Contains(actual[..(tokens * d)], v => v != 0f);
    }
}
