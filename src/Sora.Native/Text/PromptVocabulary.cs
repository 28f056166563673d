using System.Globalization;
using System.Text.Json;

namespace Sora.Native.Text;

/// <summary>
/// The words a model's captions were made of, when the model says (the <c>vocabulary</c> list of its
/// generation_defaults.json, as the shipped default model has): a prompt word outside it was never seen in
/// training, so the model can only guess at it. Real checkpoints, trained on open text, carry no such list.
/// Words are maximal runs of letters, compared case-insensitively.
/// </summary>
public sealed class PromptVocabulary
{
    private readonly HashSet<string> _words;

    public PromptVocabulary(IEnumerable<string> words) => _words = new HashSet<string>(words.Select(Normalize), StringComparer.Ordinal);

    public IReadOnlyCollection<string> Words => _words;

    /// <summary>The model's list, or null when it has none.</summary>
    /// <exception cref="InvalidDataException">generation_defaults.json is unreadable or its vocabulary is not a list of words.</exception>
    public static PromptVocabulary? Load(string modelDir)
    {
        string path = Path.Combine(modelDir, Pipeline.GenerationDefaults.FileName);
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("vocabulary", out var list)) return null;
            if (list.ValueKind != JsonValueKind.Array || list.EnumerateArray().Any(w => w.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(w.GetString())))
                throw new InvalidDataException($"{path}: 'vocabulary' must be a list of words");
            return new PromptVocabulary(list.EnumerateArray().Select(w => w.GetString()!));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e);
        }
    }

    /// <summary>The prompt's words outside the vocabulary, each once, in the order they first appear.</summary>
    public IReadOnlyList<string> Unknown(string prompt) =>
        WordsOf(prompt).Where(w => !_words.Contains(Normalize(w))).DistinctBy(Normalize).ToList();

    private static IEnumerable<string> WordsOf(string text)
    {
        int start = -1;
        for (int i = 0; i <= text.Length; i++)
        {
            bool letter = i < text.Length && char.IsLetter(text[i]);
            if (letter && start < 0) start = i;
            else if (!letter && start >= 0)
            {
                yield return text[start..i];
                start = -1;
            }
        }
    }

    private static string Normalize(string word) => word.Trim().ToLower(CultureInfo.InvariantCulture);
}
