using Sora.Cli;
using Sora.Native.Text;
using Xunit;

namespace Sora.Tests.Cli;

/// <summary>Prompt words the shipped model never saw are named in a warning line; the clip is still made.</summary>
public sealed class VocabularyTests : IDisposable
{
    private readonly string _dir = CliRunner.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Unknown_words_are_found_case_insensitively_once_each_in_order()
    {
        var vocabulary = new PromptVocabulary(["a", "red", "circle", "on", "blue", "background"]);
        Assert.Equal(["Gray", "moving", "diagonally"], vocabulary.Unknown("A Gray circle, moving diagonally... on a BLUE background; gray!"));
        Assert.Empty(vocabulary.Unknown("A red circle on a blue background."));
    }

    [Fact]
    public void The_shipped_model_lists_the_words_of_its_captions()
    {
        var vocabulary = PromptVocabulary.Load(ModelLocator.Resolve(null))!;
        foreach (var w in new[] { "circle", "square", "triangle", "red", "black", "moving", "bouncing", "background" }) Assert.Contains(w, vocabulary.Words);
        Assert.DoesNotContain("gray", vocabulary.Words);
        Assert.Null(PromptVocabulary.Load(CliRunner.Model)); // a model without a list: no warnings, ever
    }

    [Fact]
    public void A_vocabulary_that_is_not_a_list_of_words_names_the_file()
    {
        File.WriteAllText(Path.Combine(_dir, "generation_defaults.json"), """{"frames": 9, "vocabulary": ["red", 7]}""");
        var e = Assert.Throws<InvalidDataException>(() => PromptVocabulary.Load(_dir));
        Assert.Contains(Path.Combine(_dir, "generation_defaults.json"), e.Message);
    }

    [Fact]
    public void Generate_warns_of_words_outside_the_vocabulary_and_still_writes_the_clip()
    {
        string model = ModelLocator.Resolve(null);
        string outPath = Path.Combine(_dir, "clip.gif");
        var r = CliRunner.Run("generate", "a gray circle moving diagonally on a pink background", "--model", model, "--device", "cpu", "--steps", "2", "--out", outPath);
        Assert.True(r.Code == 0, r.Err);
        var warning = Assert.Single(r.ErrLines, l => l.StartsWith("sora: warning:", StringComparison.Ordinal));
        Assert.Contains("'gray', 'diagonally', 'pink'", warning);
        Assert.True(File.Exists(outPath));

        var known = CliRunner.Run("generate", "A red circle moving left on a black background.", "--model", model, "--device", "cpu", "--steps", "2", "--out", outPath);
        Assert.True(known.Code == 0, known.Err);
        Assert.DoesNotContain(known.ErrLines, l => l.Contains("warning", StringComparison.Ordinal));
    }
}
