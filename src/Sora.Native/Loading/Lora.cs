using System.Globalization;
using Sora.Runtime;
using Sora.Runtime.Safetensors;

namespace Sora.Native.Loading;

/// <summary>A LoRA file and the strength it is applied with (the CLI's <c>--lora F[:strength]</c>).</summary>
public sealed record LoraSpec(string Path, float Strength = 1f)
{
    /// <summary>"F" or "F:strength"; a colon followed by something that is not a number is part of the path.</summary>
    public static LoraSpec Parse(string text)
    {
        int colon = text.LastIndexOf(':');
        if (colon > 0 && float.TryParse(text[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out float s))
        {
            if (!float.IsFinite(s)) throw new ArgumentException($"LoRA strength in '{text}' must be finite", nameof(text));
            return new LoraSpec(text[..colon], s);
        }
        return new LoraSpec(text);
    }
}

/// <summary>
/// What one LoRA file changes in one model tensor: ΔW = Scale · Up·Down (Up [out, r], Down [r, in·…] row-major, a
/// convolution's kernel flattened into in), or, for the full-difference tensors some LoRAs carry (<c>.diff</c>,
/// <c>.diff_b</c>), ΔW = Scale · Diff.
/// </summary>
public sealed record LoraDelta(string Target, string File, string Key, float Scale, int Rank, float[]? Up, float[]? Down, float[]? Diff);

/// <summary>How a LoRA met the model: the tensors it changes, of how many the model has, and its keys that name no layer.</summary>
public sealed record LoraSummary(string File, float Strength, int LayersTouched, int ModelLayers, IReadOnlyList<string> Unmatched)
{
    public override string ToString()
        => $"LoRA {System.IO.Path.GetFileName(File)} (strength {Strength.ToString(CultureInfo.InvariantCulture)}): {LayersTouched} of {ModelLayers} weight tensors"
           + (Unmatched.Count == 0 ? "" : $"; {Unmatched.Count} key(s) name no layer of the model and were skipped, e.g. '{Unmatched[0]}'");
}

/// <summary>
/// Reads LoRA files in the layouts people download: ComfyUI/kohya (<c>diffusion_model.&lt;Wan layer&gt;</c> or
/// kohya's flattened <c>lora_unet_&lt;layer with _ for .&gt;</c>, with <c>lora_down</c> [r, in], <c>lora_up</c>
/// [out, r] and an optional <c>alpha</c>: ΔW = strength · alpha/r · up·down) and diffusers/peft
/// (<c>transformer.&lt;diffusers layer&gt;.lora_A</c> / <c>.lora_B</c>, no alpha: ΔW = strength · B·A). Module names
/// resolve against the model's own tensors, in its names or the original layout's (through the component's
/// <see cref="NameTable"/>); kohya's flattening is undone by comparing flattened names.
/// </summary>
public static class Lora
{
    private static readonly string[] KeyPrefixes = ["model.diffusion_model.", "diffusion_model.", "base_model.model.", "transformer.", "lora_unet_", "lora_transformer_"];

    private enum Part { Down, Up, Alpha, Diff, DiffBias }

    private static readonly (string Suffix, Part Part)[] Suffixes =
    [
        (".lora_down.weight", Part.Down), (".lora_A.weight", Part.Down),
        (".lora_up.weight", Part.Up), (".lora_B.weight", Part.Up),
        (".alpha", Part.Alpha), (".diff", Part.Diff), (".diff_b", Part.DiffBias),
    ];

    /// <summary>
    /// The deltas of <paramref name="spec"/> for the tensors of <paramref name="model"/> (in the model's names).
    /// Throws a <see cref="ModelLoadException"/> naming the file and tensor for a key of no LoRA kind, a pair with
    /// half missing, ranks that disagree, a shape that does not fit the layer, or a file none of whose keys names a
    /// layer of the model.
    /// </summary>
    public static (IReadOnlyList<LoraDelta> Deltas, LoraSummary Summary) Read(LoraSpec spec, ITensorSource model, NameTable table)
    {
        SafetensorsCheckpoint file;
        try { file = SafetensorsCheckpoint.Open(spec.Path); }
        catch (SafetensorsException e) { throw new ModelLoadException(e.Message, e); }
        using (file)
        {
            var resolve = Resolver(model, table);
            var groups = new Dictionary<string, Dictionary<Part, string>>(StringComparer.Ordinal);
            foreach (string key in file.Names.Order(StringComparer.Ordinal))
            {
                var (module, part) = Split(key) ?? throw new ModelLoadException(
                    $"{spec.Path}: tensor '{key}' is not a LoRA tensor (expected <layer>.lora_down/lora_up/lora_A/lora_B.weight, .alpha, .diff or .diff_b)");
                if (!groups.TryGetValue(module, out var parts)) groups[module] = parts = new();
                parts[part] = key;
            }

            var deltas = new List<LoraDelta>();
            var unmatched = new List<string>();
            foreach (var (module, parts) in groups)
            {
                string? layer = resolve(module);
                if (layer is null)
                {
                    unmatched.Add(parts.Values.First());
                    continue;
                }
                if (parts.ContainsKey(Part.Down) || parts.ContainsKey(Part.Up) || parts.ContainsKey(Part.Alpha))
                    deltas.Add(LowRank(spec, file, model, layer + ".weight", parts));
                if (parts.TryGetValue(Part.Diff, out string? diff)) deltas.Add(Full(spec, file, model, layer + ".weight", diff));
                if (parts.TryGetValue(Part.DiffBias, out string? diffBias)) deltas.Add(Full(spec, file, model, layer + ".bias", diffBias));
            }
            if (deltas.Count == 0)
                throw new ModelLoadException($"{spec.Path}: none of its {groups.Count} LoRA layers names a layer of {model.Source} (e.g. '{unmatched.FirstOrDefault() ?? "no tensors"}')");
            int modelLayers = model.Names.Count(n => n.EndsWith(".weight", StringComparison.Ordinal));
            var summary = new LoraSummary(spec.Path, spec.Strength, deltas.Select(d => d.Target).Distinct().Count(), modelLayers, unmatched);
            return (deltas, summary);
        }
    }

    private static (string Module, Part Part)? Split(string key)
    {
        foreach (var (suffix, part) in Suffixes)
            if (key.EndsWith(suffix, StringComparison.Ordinal) && key.Length > suffix.Length) return (key[..^suffix.Length], part);
        return null;
    }

    /// <summary>LoRA module key → the model's module (name without ".weight"), or null.</summary>
    private static Func<string, string?> Resolver(ITensorSource model, NameTable table)
    {
        var modules = new HashSet<string>(model.Names.Where(n => n.EndsWith(".weight", StringComparison.Ordinal)).Select(n => n[..^".weight".Length]), StringComparer.Ordinal);
        var flat = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string m in modules)
        {
            flat.TryAdd(Flatten(m), m);
            if (table.ToStored(m) is { } stored) flat.TryAdd(Flatten(stored), m);
        }
        return key =>
        {
            foreach (string candidate in Unprefixed(key))
            {
                if (modules.Contains(candidate)) return candidate;
                if (table.ToModel(candidate) is { } mapped && modules.Contains(mapped)) return mapped;
                if (flat.TryGetValue(Flatten(candidate), out string? m)) return m;
            }
            return null;
        };
    }

    private static IEnumerable<string> Unprefixed(string key)
    {
        yield return key;
        foreach (string p in KeyPrefixes)
            if (key.StartsWith(p, StringComparison.Ordinal)) yield return key[p.Length..];
    }

    private static string Flatten(string name) => name.Replace('.', '_');

    private static LoraDelta LowRank(LoraSpec spec, SafetensorsCheckpoint file, ITensorSource model, string target, Dictionary<Part, string> parts)
    {
        string any = parts.Values.First();
        if (!parts.TryGetValue(Part.Down, out string? downKey) || !parts.TryGetValue(Part.Up, out string? upKey))
            throw new ModelLoadException($"{spec.Path}: tensor '{any}' has no {(parts.ContainsKey(Part.Down) ? "lora_up/lora_B" : "lora_down/lora_A")} partner");
        var (_, weight) = model.Describe(target);
        int outFeatures = weight[0];
        long inFeatures = weight.Skip(1).Aggregate(1L, (a, b) => a * b);
        var down = file.GetEntry(downKey).Shape;
        var up = file.GetEntry(upKey).Shape;
        long downIn = down.Skip(1).Aggregate(1L, (a, b) => a * b), upRank = up.Skip(1).Aggregate(1L, (a, b) => a * b);
        if (down.Length < 2 || up.Length < 2 || down[0] < 1)
            throw new ModelLoadException($"{spec.Path}: tensor '{downKey}' [{string.Join(", ", down)}] / '{upKey}' [{string.Join(", ", up)}] are not a low-rank pair");
        int rank = down[0];
        if (upRank != rank)
            throw new ModelLoadException($"{spec.Path}: tensor '{upKey}' has shape [{string.Join(", ", up)}] (rank {upRank}) but '{downKey}' has rank {rank} [{string.Join(", ", down)}]");
        if (up[0] != outFeatures || downIn != inFeatures)
            throw new ModelLoadException($"{spec.Path}: tensors '{downKey}' [{string.Join(", ", down)}] and '{upKey}' [{string.Join(", ", up)}] make a [{up[0]}, {downIn}] change, but '{target}' of {model.Source} is [{string.Join(", ", weight)}]");
        float scale = spec.Strength;
        if (parts.TryGetValue(Part.Alpha, out string? alphaKey))
        {
            var alpha = file.Get(alphaKey).ToFloatArray();
            if (alpha.Length != 1 || !float.IsFinite(alpha[0]))
                throw new ModelLoadException($"{spec.Path}: tensor '{alphaKey}' must be one finite number");
            scale *= alpha[0] / rank;
        }
        return new LoraDelta(target, spec.Path, downKey, scale, rank, Floats(file, upKey), Floats(file, downKey), null);
    }

    private static LoraDelta Full(LoraSpec spec, SafetensorsCheckpoint file, ITensorSource model, string target, string key)
    {
        if (!model.Contains(target))
            throw new ModelLoadException($"{spec.Path}: tensor '{key}' changes '{target}', which {model.Source} does not have");
        var (_, shape) = model.Describe(target);
        var stored = file.GetEntry(key).Shape;
        if (stored.Aggregate(1L, (a, b) => a * b) != shape.Aggregate(1L, (a, b) => a * b))
            throw new ModelLoadException($"{spec.Path}: tensor '{key}' has shape [{string.Join(", ", stored)}], but '{target}' of {model.Source} is [{string.Join(", ", shape)}]");
        return new LoraDelta(target, spec.Path, key, spec.Strength, 0, null, null, Floats(file, key));
    }

    private static float[] Floats(SafetensorsCheckpoint file, string key)
    {
        var values = file.Get(key).ToFloatArray();
        if (values.Any(v => !float.IsFinite(v))) throw new ModelLoadException($"{file.Source}: tensor '{key}' holds a non-finite value");
        return values;
    }
}
