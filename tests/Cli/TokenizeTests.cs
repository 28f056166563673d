using System.Text.Json;
using Xunit;

namespace Sora.Tests.Cli;

public sealed class TokenizeTests
{
    public static IEnumerable<object[]> Cases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(CliRunner.Fixtures, "tokenizer_case.json")));
        foreach (var c in doc.RootElement.EnumerateArray())
            yield return [c[0].GetString()!, c[1].EnumerateArray().Select(i => i.GetInt32()).ToArray()];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void IdsMatchSentencepiece(string text, int[] expected)
    {
        var r = CliRunner.Run("tokenize", "--model", CliRunner.Model, text);
        Assert.Equal(0, r.Code);
        var idsLine = Assert.Single(r.Out.Split('\n'), l => l.StartsWith("ids:", StringComparison.Ordinal));
        var ids = idsLine["ids:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        Assert.Equal(expected, ids);
        Assert.Contains($"count: {expected.Length}", r.Out);
    }

    [Fact]
    public void ForModelAppendsEndOfSequence()
    {
        var r = CliRunner.Run("tokenize", "--model", CliRunner.Model, "--for-model", "A red circle");
        Assert.Equal(0, r.Code);
        var pieces = Assert.Single(r.Out.Split('\n'), l => l.StartsWith("pieces:", StringComparison.Ordinal));
        Assert.EndsWith("</s>", pieces.TrimEnd());
    }
}
