using Xunit;

namespace Sora.Tests.Cli;

/// <summary>Bad input of every kind: one "sora: error: ..." line naming the problem, a non-zero exit, no output file.</summary>
public sealed class ArgumentErrorTests : IDisposable
{
    private readonly string _dir = CliRunner.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("Required command")]
    [InlineData("'bogus'", "bogus")]
    [InlineData("--frames must be 4k+1", "generate", "x", "--frames", "10")]
    [InlineData("--frames", "generate", "x", "--frames", "abc")]
    [InlineData("--height must be a positive multiple of 16", "generate", "x", "--height", "100")]
    [InlineData("--width must be a positive multiple of 16", "generate", "x", "--width", "0")]
    [InlineData("unknown device 'tpu'", "generate", "x", "--device", "tpu")]
    [InlineData("unknown scheduler 'ddim'", "generate", "x", "--scheduler", "ddim")]
    [InlineData("unknown type 'pixels'", "generate", "x", "--output-type", "pixels")]
    [InlineData("--steps must be at least 1", "generate", "x", "--steps", "0")]
    [InlineData("--guidance", "generate", "x", "--guidance", "NaN")]
    [InlineData("give a prompt", "generate")]
    [InlineData("PNG frames go into a folder", "generate", "x", "--out", "a.png")]
    [InlineData("unknown video format '.txt'", "generate", "x", "--out", "a.txt")]
    [InlineData("writes a .safetensors file", "generate", "x", "--output-type", "latent", "--out", "a.gif")]
    [InlineData("needs --output-type latent", "generate", "x", "--out", "a.safetensors")]
    [InlineData("--model /nonexistent-sora-model: folder not found", "generate", "x", "--model", "/nonexistent-sora-model", "--out", "a.gif")]
    [InlineData("--latents /nonexistent.safetensors: file not found", "generate", "x", "--latents", "/nonexistent.safetensors", "--out", "a.gif")]
    [InlineData("unknown device 'tpu'", "encode-prompt", "x", "--device", "tpu", "--out", "e.safetensors")]
    [InlineData("written as a .safetensors file", "encode-prompt", "x", "--out", "e.bin")]
    [InlineData("--out", "encode-prompt", "x")]
    [InlineData("inspect /nonexistent-sora: no such file or folder", "inspect", "/nonexistent-sora")]
    [InlineData("--model /nonexistent-sora-model: folder not found", "tokenize", "--model", "/nonexistent-sora-model", "x")]
    public void OneLineNamingTheProblem(string expected, params string[] args)
    {
        var line = CliRunner.Run(args).SingleError();
        Assert.Contains(expected, line);
    }

    [Fact]
    public void UnwritableOutputIsReportedBeforeAnythingLoads()
    {
        // The model folder does not exist either: the output path must be the first thing checked.
        var line = CliRunner.Run("generate", "x", "--model", "/nonexistent-sora-model", "--out", Path.Combine(_dir, "missing", "v.gif")).SingleError();
        Assert.Contains("does not exist", line);
        Assert.Contains(Path.Combine(_dir, "missing"), line);
    }

    [Fact]
    public void OutputThatIsAFolderIsRefused()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "v.gif"));
        var line = CliRunner.Run("generate", "x", "--model", CliRunner.Model, "--out", Path.Combine(_dir, "v.gif")).SingleError();
        Assert.Contains("is a folder", line);
    }

    [Fact]
    public void FrameFolderThatHoldsFilesIsRefused()
    {
        var frames = Path.Combine(_dir, "frames");
        Directory.CreateDirectory(frames);
        File.WriteAllText(Path.Combine(frames, "mine.txt"), "keep");
        var line = CliRunner.Run("generate", "x", "--model", CliRunner.Model, "--out", frames + "/").SingleError();
        Assert.Contains("not empty", line);
        Assert.Equal("keep", File.ReadAllText(Path.Combine(frames, "mine.txt")));
    }

    [Fact]
    public void LatentsFileWithoutALatentsTensorIsRefused()
    {
        var line = CliRunner.Run("generate", "x", "--latents", Path.Combine(CliRunner.Fixtures, "transformer_case.safetensors"),
            "--out", Path.Combine(_dir, "v.gif")).SingleError();
        Assert.Contains("none is named 'latents'", line);
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void LatentsThatDisagreeWithTheSizeAreRefused()
    {
        var line = CliRunner.Run("generate", "x", "--latents", Path.Combine(CliRunner.Fixtures, "cli", "latents.safetensors"),
            "--frames", "13", "--out", Path.Combine(_dir, "v.gif")).SingleError();
        Assert.Contains("9 frames of 48x32", line);
    }

    [Fact]
    public void CorruptEmbeddingsFileIsOneLine()
    {
        var path = Path.Combine(_dir, "bad.safetensors");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        var line = CliRunner.Run("generate", "--prompt-embeds", path, "--model", CliRunner.Model, "--out", Path.Combine(_dir, "v.gif")).SingleError();
        Assert.Contains("bad.safetensors", line);
        Assert.Single(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void MissingTokenizerIsOneLine()
    {
        var line = CliRunner.Run("tokenize", "--model", Path.Combine(CliRunner.Model, "vae"), "x").SingleError();
        Assert.Contains("tokenizer", line);
    }
}
