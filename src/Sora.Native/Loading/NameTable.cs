using System.Text.RegularExpressions;

namespace Sora.Native.Loading;

/// <summary>
/// How one file layout names a component's modules, as data: each entry maps a stored module name to the module
/// the model classes bind (diffusers' name), '#' standing for a decimal index copied across; the rest of a tensor's
/// name (".weight", ".bias", ".gamma") is kept. Entries are tried in order and the first match wins. A stored name
/// that no entry matches keeps its name, so the model's strict binding reports it. <see cref="Prefixes"/> are the
/// wrappers some files put around every key ("model.diffusion_model."); one is removed when every key carries it.
/// </summary>
public sealed class NameTable
{
    private readonly (string Stored, string Model)[] _modules;
    private readonly (Regex Stored, string Model)[] _entries;

    public NameTable(IEnumerable<(string Stored, string Model)> modules, IEnumerable<string>? prefixes = null)
    {
        _modules = modules.ToArray();
        _entries = _modules.Select(m => (Pattern(m.Stored), m.Model)).ToArray();
        // Longest first, so "model.diffusion_model." is removed whole rather than leaving "model.".
        Prefixes = (prefixes ?? []).OrderByDescending(p => p.Length).ToArray();
    }

    public IReadOnlyList<string> Prefixes { get; }

    /// <summary>The prefix every one of <paramref name="names"/> starts with, or "" when none of <see cref="Prefixes"/> does.</summary>
    public string CommonPrefix(IReadOnlyCollection<string> names)
        => names.Count == 0 ? "" : Prefixes.FirstOrDefault(p => names.All(n => n.StartsWith(p, StringComparison.Ordinal))) ?? "";

    /// <summary>The model's name for a stored name (its file prefix already removed), or null when no entry matches.</summary>
    public string? ToModel(string stored)
    {
        foreach (var (pattern, model) in _entries)
        {
            var m = pattern.Match(stored);
            if (!m.Success) continue;
            int group = 1;
            string name = Regex.Replace(model, "#", _ => m.Groups[group++].Value);
            return name + m.Groups["rest"].Value;
        }
        return null;
    }

    /// <summary>The stored name of a model name (the table read backwards), or null when no entry gives it.</summary>
    public string? ToStored(string model) => (_inverse ??= new NameTable(_modules.Select(m => (m.Model, m.Stored)))).ToModel(model);

    private NameTable? _inverse;

    /// <summary>'#' matches an index; the module must end the name or be followed by ".".</summary>
    private static Regex Pattern(string stored)
        => new("^" + Regex.Escape(stored).Replace("\\#", "#").Replace("#", "([0-9]+)") + "(?<rest>\\..*)?$",
            RegexOptions.CultureInvariant);
}
