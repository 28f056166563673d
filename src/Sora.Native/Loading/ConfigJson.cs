using System.Text.Json;

namespace Sora.Native.Loading;

/// <summary>
/// Typed reading of a diffusers/transformers config.json. Unknown keys are ignored (newer library versions add
/// keys); a missing required key, a null where a value is needed, or a value of the wrong type is a
/// <see cref="ModelLoadException"/> naming the file and the key.
/// </summary>
public sealed class ConfigJson
{
    private readonly JsonElement _root;

    private ConfigJson(string path, JsonElement root)
    {
        Path = path;
        _root = root;
    }

    /// <summary>The file the values came from (for error messages).</summary>
    public string Path { get; }

    /// <summary>Reads and parses <paramref name="path"/>; <paramref name="what"/> names the file in errors ("transformer config").</summary>
    public static ConfigJson Load(string path, string what)
    {
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: {what} not found");
        try
        {
            // Clone detaches the root from the document, so nothing needs disposing.
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ModelLoadException($"{path}: {what} is not a JSON object");
            return new ConfigJson(path, doc.RootElement.Clone());
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"{path}: {what} is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>True when the key is absent or null.</summary>
    public bool IsNull(string key) => Get(key) is null;

    public int RequiredInt(string key) => Int(key) ?? throw Missing(key);
    public int Int(string key, int fallback) => Int(key) ?? fallback;

    public double Double(string key, double fallback) => Double(key) ?? fallback;

    public bool Bool(string key, bool fallback)
    {
        if (Get(key) is not { } v) return fallback;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Bad(key, v, "a boolean"),
        };
    }

    public string? String(string key)
    {
        if (Get(key) is not { } v) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Bad(key, v, "a string");
    }

    public string RequiredString(string key) => String(key) ?? throw Missing(key);

    public int[] RequiredIntArray(string key) => IntArray(key) ?? throw Missing(key);

    public int[]? IntArray(string key)
    {
        if (Get(key) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Array) throw Bad(key, v, "an array of integers");
        var result = new int[v.GetArrayLength()];
        int n = 0;
        foreach (var e in v.EnumerateArray())
            result[n++] = e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i) ? i : throw Bad(key, v, "an array of integers");
        return result;
    }

    /// <summary>An error about the value of <paramref name="key"/>, prefixed with the file.</summary>
    public ModelLoadException Error(string key, string problem) => new($"{Path}: {key}: {problem}");

    private int? Int(string key)
    {
        if (Get(key) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw Bad(key, v, "an integer");
    }

    private double? Double(string key)
    {
        if (Get(key) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Bad(key, v, "a number");
    }

    private JsonElement? Get(string key)
        => _root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private ModelLoadException Missing(string key) => new($"{Path}: missing required key '{key}'");

    private ModelLoadException Bad(string key, JsonElement v, string expected) => new($"{Path}: {key} = {v.GetRawText()} is not {expected}");
}
