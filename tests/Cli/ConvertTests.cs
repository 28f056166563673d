using Sora.Runtime.Gguf;
using Xunit;

namespace Sora.Tests.Cli;

/// <summary><c>sora convert</c>: a checkpoint to GGUF, bad arguments as one usage line with nothing written.</summary>
public sealed class ConvertTests : IDisposable
{
    private readonly string _dir = CliRunner.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Source => Path.Combine(AppContext.BaseDirectory, "fixtures", "gguf", "source.safetensors");

    [Fact]
    public void Converts_to_the_asked_type_and_reports_what_it_wrote()
    {
        string output = Path.Combine(_dir, "q4.gguf");
        var r = CliRunner.Run("convert", Source, "--type", "Q4_K", "--out", output);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("4 q4_K", r.Out);
        using var file = GgufFile.Open(output);
        Assert.Equal(GgmlType.Q4_K, file.GetInfo("blocks.0.ffn.0.weight").Type);
        Assert.Equal(GgmlType.F32, file.GetInfo("blocks.0.norm3.bias").Type);
    }

    [Theory]
    [InlineData("--type", "Q3_K")]
    [InlineData("--out", "x.safetensors")]
    public void Bad_arguments_are_a_usage_error_and_write_nothing(string flag, string value)
    {
        var r = CliRunner.Run("convert", Source, flag, flag == "--out" ? Path.Combine(_dir, value) : value);
        Assert.Equal(2, r.Code);
        Assert.Contains(flag, r.SingleError());
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }
}
