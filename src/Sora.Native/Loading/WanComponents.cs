using Sora.Native.Text;
using Sora.Native.Wan;
using Sora.Native.Wan.Vae;
using Sora.Runtime;

namespace Sora.Native.Loading;

/// <summary>
/// Opens each component from what people download — a diffusers folder (config.json + weights), an
/// original-layout or diffusers-named .safetensors file, or a .gguf file — as a source in the model's names and
/// the config that describes it. A folder's config.json is read; a single file's (or a folder's without
/// config.json) architecture is inferred from its shapes (<see cref="ShapeInference"/>), with an optional explicit
/// config that must agree with them.
/// </summary>
public static class WanComponents
{
    /// <summary>The transformer at <paramref name="path"/>; <paramref name="configPath"/> overrides a folder's config.json.</summary>
    public static (ITensorSource Source, WanTransformerConfig Config) Transformer(string path, string? configPath = null)
    {
        var source = Renamed(path, WanTransformerNames.Table);
        try
        {
            string? folderConfig = FolderConfig(path);
            var config = configPath is null && folderConfig is not null
                ? WanTransformerConfig.Load(folderConfig)
                : ShapeInference.Transformer(source, configPath);
            return (source, config);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>The VAE at <paramref name="path"/>: a diffusers folder, or a Wan2.1 original-layout file (<paramref name="configPath"/>: a diffusers vae config for it).</summary>
    public static (ITensorSource Source, WanVaeConfig Config) Vae(string path, string? configPath = null)
    {
        if ((configPath ?? FolderConfig(path)) is { } given && Directory.Exists(path))
            return (Renamed(path, new NameTable([])), WanVaeConfig.Load(given));
        var raw = TensorSources.Open(path);
        try
        {
            string prefix = new NameTable([], WanVaeNames.Prefixes).CommonPrefix(raw.Names.ToList());
            if (raw.Contains(prefix + "decoder.conv_in.weight"))
            {
                if (configPath is null)
                    throw new ModelLoadException($"{path}: a diffusers-layout VAE file needs its config.json: pass the vae/ folder, or a config with the file");
                return (new RenamedSource(raw, new NameTable([], [prefix])), WanVaeConfig.Load(configPath));
            }
            var config = configPath is null ? ShapeInference.Vae(raw, prefix) : WanVaeConfig.Load(configPath);
            return (new RenamedSource(raw, WanVaeNames.Table(config.DimMult.Length, config.NumResBlocks)), config);
        }
        catch
        {
            raw.Dispose();
            throw;
        }
    }

    /// <summary>The UMT5 encoder at <paramref name="path"/>: a transformers folder (config.json + weights) or a single file.</summary>
    public static (ITensorSource Source, Umt5Config Config) TextEncoder(string path)
    {
        var source = Renamed(path, Umt5Names.Table);
        try
        {
            var config = FolderConfig(path) is { } folderConfig ? Umt5Config.Load(folderConfig) : ShapeInference.Umt5(source);
            return (source, config);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>Only the transformer's config (headers are read, no weights), for checks before loading.</summary>
    public static WanTransformerConfig TransformerConfig(string path, string? configPath = null)
    {
        var (source, config) = Transformer(path, configPath);
        source.Dispose();
        return config;
    }

    /// <summary>Only the VAE's config, for checks before loading.</summary>
    public static WanVaeConfig VaeConfig(string path, string? configPath = null)
    {
        var (source, config) = Vae(path, configPath);
        source.Dispose();
        return config;
    }

    /// <summary>
    /// <paramref name="source"/> with the LoRAs merged (<see cref="LoraMergedSource"/>), and how each met the
    /// model; the source itself when there are none. Disposes the source on failure.
    /// </summary>
    public static (ITensorSource Source, IReadOnlyList<LoraSummary> Summaries) WithLoras(ITensorSource source, IReadOnlyList<LoraSpec>? loras, NameTable table, IBackend backend)
    {
        if (loras is null || loras.Count == 0) return (source, []);
        try
        {
            var deltas = new List<LoraDelta>();
            var summaries = new List<LoraSummary>();
            foreach (var spec in loras)
            {
                var (d, summary) = Lora.Read(spec, source, table);
                deltas.AddRange(d);
                summaries.Add(summary);
            }
            return (new LoraMergedSource(source, deltas, backend), summaries);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>The config.json of a component folder, or null for a file or a folder without one.</summary>
    private static string? FolderConfig(string path)
    {
        string config = Path.Combine(path, "config.json");
        return Directory.Exists(path) && File.Exists(config) ? config : null;
    }

    private static RenamedSource Renamed(string path, NameTable table)
    {
        var raw = TensorSources.Open(path);
        try { return new RenamedSource(raw, table); }
        catch
        {
            raw.Dispose();
            throw;
        }
    }
}
