using System.Text.Json;
using System.Text.Json.Nodes;
using Sora.Native.Text;
using Xunit;

namespace Sora.Tests.Text;

/// <summary>
/// Token ids must equal the sentencepiece library's exactly. Expected ids come from the fixtures
/// (tokenizer_case.json, prompt_case) and from tests/Text/data/tokenizer_cases.json, all written by
/// sentencepiece itself (data/make_cases.py), never by this code.
/// </summary>
public class SentencePieceTokenizerTests
{
    private static readonly Lazy<SentencePieceTokenizer> Fixture = new(() => SentencePieceTokenizer.Load(TextFixtures.TokenizerDir));

    [Fact]
    public void FixtureTokenizerCaseIdsMatchSentencePiece()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TextFixtures.Root, "tokenizer_case.json")));
        int count = 0;
        foreach (var pair in doc.RootElement.EnumerateArray())
        {
            string text = pair[0].GetString()!;
            int[] expected = pair[1].EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.True(expected.SequenceEqual(Fixture.Value.Encode(text)), $"ids differ for \"{text}\": got [{string.Join(", ", Fixture.Value.Encode(text))}], expected [{string.Join(", ", expected)}]");
            count++;
        }
        Assert.Equal(6, count);
    }

    [Fact]
    public void PromptCaseIdsIncludeEos()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TextFixtures.Root, "prompt_case.json")));
        var tensors = TextFixtures.ReadSafetensors(Path.Combine(TextFixtures.Root, "prompt_case.safetensors"));
        int[] prompt = tensors["prompt_ids"].Values.Select(v => (int)v).ToArray();
        int[] negative = tensors["negative_ids"].Values.Select(v => (int)v).ToArray();
        Assert.Equal(prompt, Fixture.Value.EncodeForModel(doc.RootElement.GetProperty("prompt").GetString()!));
        Assert.Equal(negative, Fixture.Value.EncodeForModel(doc.RootElement.GetProperty("negative_prompt").GetString()!));
    }

    public static TheoryData<string> GeneratedModels => new() { "fixture", "trained_bytefallback", "trained_flags" };

    [Theory]
    [MemberData(nameof(GeneratedModels))]
    public void GeneratedCasesMatchSentencePiece(string model)
    {
        var tokenizer = model == "fixture" ? Fixture.Value : SentencePieceTokenizer.LoadSentencePieceModel(Path.Combine(TextFixtures.DataDir, model + ".model"));
        var cases = ReadGeneratedCases(model);
        Assert.True(cases.Count >= 20);
        foreach (var (text, expected) in cases)
        {
            int[] actual = tokenizer.Encode(text);
            Assert.True(expected.SequenceEqual(actual), $"{model}: ids differ for \"{Escape(text)}\":\n got      [{string.Join(", ", actual)}]\n expected [{string.Join(", ", expected)}]");
        }
    }

    [Fact]
    public void TrainedModelsExerciseUserDefinedPiecesByteFallbackAndFlags()
    {
        // Guards the test data: the trained models must really contain the features the cases are meant to cover.
        var bytes = SentencePieceTokenizer.LoadSentencePieceModel(Path.Combine(TextFixtures.DataDir, "trained_bytefallback.model")).Model;
        Assert.True(bytes.ByteFallback);
        Assert.Contains(bytes.Pieces, p => p.Type == PieceType.UserDefined && p.Piece == "Wan2.1");
        Assert.Equal(256, bytes.Pieces.Count(p => p.Type == PieceType.Byte));
        Assert.Equal(-1, bytes.BosId);
        var flags = SentencePieceTokenizer.LoadSentencePieceModel(Path.Combine(TextFixtures.DataDir, "trained_flags.model")).Model;
        Assert.False(flags.Normalizer.AddDummyPrefix);
        Assert.False(flags.Normalizer.RemoveExtraWhitespaces);
        Assert.True(flags.TreatWhitespaceAsSuffix);
        Assert.Equal("nfkc_cf", flags.Normalizer.Name);
    }

    [Fact]
    public void TokenizerJsonGivesTheSameIdsAsSpieceModel()
    {
        // hf_tokenizer/ holds only tokenizer.json (the fixture's model in Hugging Face's Unigram form).
        string dir = Path.Combine(TextFixtures.DataDir, "hf_tokenizer");
        Assert.False(File.Exists(Path.Combine(dir, "spiece.model")));
        var tokenizer = SentencePieceTokenizer.Load(dir);
        Assert.Equal(1, tokenizer.EosId);
        Assert.Equal(2, tokenizer.UnkId);
        foreach (var (text, expected) in ReadGeneratedCases("fixture"))
            Assert.True(expected.SequenceEqual(tokenizer.Encode(text)), $"tokenizer.json: ids differ for \"{Escape(text)}\"");
    }

    [Fact]
    public void TokenizerJsonInTheNewerConverterLayoutGivesTheSameIds()
    {
        // Newer transformers converters write Precompiled + Strip + Replace(" {2,}" → "▁") and a single
        // Metaspace with prepend_scheme "always": the same SentencePiece behaviour.
        var doc = JsonNode.Parse(File.ReadAllText(Path.Combine(TextFixtures.DataDir, "hf_tokenizer", "tokenizer.json")))!;
        var precompiled = doc["normalizer"]!["normalizers"]![0]!.DeepClone();
        doc["normalizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["normalizers"] = new JsonArray(
                precompiled,
                new JsonObject { ["type"] = "Strip", ["strip_left"] = false, ["strip_right"] = true },
                new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["Regex"] = " {2,}" }, ["content"] = "\u2581" }),
        };
        doc["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = "always", ["split"] = true };
        string dir = Directory.CreateTempSubdirectory("sora-text-json-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), doc.ToJsonString());
            var tokenizer = SentencePieceTokenizer.Load(dir);
            Assert.True(tokenizer.Model.Normalizer.AddDummyPrefix);
            Assert.True(tokenizer.Model.Normalizer.RemoveExtraWhitespaces);
            foreach (var (text, expected) in ReadGeneratedCases("fixture"))
                Assert.True(expected.SequenceEqual(tokenizer.Encode(text)), $"tokenizer.json (newer layout): ids differ for \"{Escape(text)}\"");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void EncodeForModelTruncatesKeepingEosLast()
    {
        var tokenizer = Fixture.Value;
        string longText = string.Concat(Enumerable.Repeat("A red circle moving left on a black background. ", 60));
        int[] pieces = tokenizer.Encode(longText);
        Assert.True(pieces.Length > 600);

        int[] ids = tokenizer.EncodeForModel(longText);
        Assert.Equal(512, ids.Length);
        Assert.Equal(pieces.Take(511), ids.Take(511));
        Assert.Equal(tokenizer.EosId, ids[^1]);

        Assert.Equal([.. pieces.Take(9), tokenizer.EosId], tokenizer.EncodeForModel(longText, maxLength: 10));
        Assert.Equal([tokenizer.EosId], tokenizer.EncodeForModel(longText, maxLength: 1));
        Assert.Equal([tokenizer.EosId], tokenizer.EncodeForModel(""));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.EncodeForModel("x", maxLength: 0));
    }

    [Fact]
    public void BadModelBytesGiveAnErrorNamingTheFile()
    {
        string dir = Directory.CreateTempSubdirectory("sora-text-").FullName;
        try
        {
            string path = Path.Combine(dir, "spiece.model");
            File.WriteAllBytes(path, [0x0A, 0xFF, 0xFF, 0xFF, 0x0F, 0x01, 0x02]); // a piece claiming ~4 GB
            var e = Assert.Throws<InvalidDataException>(() => SentencePieceTokenizer.Load(dir));
            Assert.Contains(path, e.Message);

            byte[] real = File.ReadAllBytes(Path.Combine(TextFixtures.TokenizerDir, "spiece.model"));
            File.WriteAllBytes(path, real[..(real.Length / 2)]); // truncated inside the charsmap
            e = Assert.Throws<InvalidDataException>(() => SentencePieceTokenizer.Load(dir));
            Assert.Contains(path, e.Message);

            File.WriteAllText(path, "this is not a protobuf");
            e = Assert.Throws<InvalidDataException>(() => SentencePieceTokenizer.Load(dir));
            Assert.Contains(path, e.Message);

            File.Delete(path);
            string json = Path.Combine(dir, "tokenizer.json");
            File.WriteAllText(json, "{\"model\": {\"type\": \"BPE\"}}");
            e = Assert.Throws<InvalidDataException>(() => SentencePieceTokenizer.Load(dir));
            Assert.Contains(json, e.Message);
            Assert.Contains("BPE", e.Message);
            File.WriteAllText(json, "{}");
            e = Assert.Throws<InvalidDataException>(() => SentencePieceTokenizer.Load(dir));
            Assert.Contains(json, e.Message);

            File.Delete(json);
            var missing = Assert.Throws<FileNotFoundException>(() => SentencePieceTokenizer.Load(dir));
            Assert.Contains(dir, missing.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static List<(string Text, int[] Ids)> ReadGeneratedCases(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TextFixtures.DataDir, "tokenizer_cases.json")));
        return doc.RootElement.GetProperty("cases").GetProperty(model).EnumerateArray()
            .Select(pair => (pair[0].GetString()!, pair[1].EnumerateArray().Select(e => e.GetInt32()).ToArray()))
            .ToList();
    }

    private static string Escape(string text)
        => string.Concat(text.Take(80).Select(c => c < ' ' || c > '~' ? $"\\u{(int)c:X4}" : c.ToString()));
}
