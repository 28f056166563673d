using System.Globalization;
using Xunit;

namespace Sora.Tests.Cli;

public sealed class InspectTests
{
    [Fact]
    public void ModelFolderTotalsMatchACountFromTheHeaders()
    {
        var r = CliRunner.Run("inspect", CliRunner.Model);
        Assert.Equal(0, r.Code);
        var files = Directory.GetFiles(CliRunner.Model, "*.safetensors", SearchOption.AllDirectories);
        var headers = files.ToDictionary(f => f, MiniSafetensors.Header);
        long total = headers.Values.Sum(h => h.Values.Sum(e => e.Count));
        int tensors = headers.Values.Sum(h => h.Count);
        Assert.True(total > 0);

        var lines = r.Out.Split('\n', StringSplitOptions.TrimEntries);
        var totalLine = Assert.Single(lines, l => l.StartsWith("total", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(tensors, int.Parse(totalLine[1], CultureInfo.InvariantCulture));
        Assert.Equal(total, long.Parse(totalLine[2], NumberStyles.AllowThousands, CultureInfo.InvariantCulture));

        // One row per component, each with its own count.
        foreach (var component in new[] { "text_encoder", "transformer", "vae" })
        {
            long expected = headers.Where(h => h.Key.Contains(Path.DirectorySeparatorChar + component + Path.DirectorySeparatorChar))
                .Sum(h => h.Value.Values.Sum(e => e.Count));
            var row = Assert.Single(lines, l => l.StartsWith(component + " ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(expected, long.Parse(row[2], NumberStyles.AllowThousands, CultureInfo.InvariantCulture));
        }
    }

    [Fact]
    public void FileListsEveryTensorWithDtypeAndShape()
    {
        var path = Path.Combine(CliRunner.Model, "transformer", "diffusion_pytorch_model.safetensors");
        var r = CliRunner.Run("inspect", path);
        Assert.Equal(0, r.Code);
        var header = MiniSafetensors.Header(path);
        foreach (var (name, e) in header)
        {
            var line = Assert.Single(r.Out.Split('\n'), l => l.TrimStart().StartsWith(name + " ", StringComparison.Ordinal));
            Assert.Contains($" {e.DType} ", line);
            Assert.Contains("[" + string.Join(", ", e.Shape) + "]", line);
            Assert.EndsWith(" " + e.Count.ToString("N0", CultureInfo.InvariantCulture), line.TrimEnd());
        }
        long total = header.Values.Sum(e => e.Count);
        Assert.Contains($"{header.Count} tensors, {total.ToString("N0", CultureInfo.InvariantCulture)} parameters", r.Out);
    }

    [Fact]
    public void CorruptFileIsOneLine()
    {
        var dir = CliRunner.NewTempDir();
        try
        {
            var src = Path.Combine(CliRunner.Model, "transformer", "diffusion_pytorch_model.safetensors");
            var bytes = File.ReadAllBytes(src);
            var path = Path.Combine(dir, "truncated.safetensors");
            File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
            var line = CliRunner.Run("inspect", path).SingleError();
            Assert.Contains("truncated.safetensors", line);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
