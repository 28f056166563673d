using Sora.Runtime;
using Sora.Runtime.Safetensors;

namespace Sora.Native.Loading;

/// <summary>Opens the files a component can come in, as one <see cref="ITensorSource"/> in the file's own names.</summary>
public static class TensorSources
{
    /// <summary>Whether <paramref name="path"/> names a GGUF file (by its extension).</summary>
    public static bool IsGguf(string path) => path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A .safetensors file, a *.safetensors.index.json, a folder of them, or a .gguf file; scaled-fp8 scales are
    /// paired with their weights (<see cref="ScaledFp8Source"/>). A malformed file is a <see cref="ModelLoadException"/>
    /// naming the file and tensor.
    /// </summary>
    public static ITensorSource Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path) && !Directory.Exists(path)) throw new ModelLoadException($"{path}: file not found");
        ITensorSource raw;
        if (IsGguf(path)) raw = GgufSource.Open(path);
        else
        {
            try { raw = SafetensorsCheckpoint.Open(path); }
            catch (SafetensorsException e) { throw new ModelLoadException(e.Message, e); }
        }
        try { return ScaledFp8Source.Wrap(raw); }
        catch
        {
            raw.Dispose();
            throw;
        }
    }

    /// <summary>The name the file gives the model's tensor <paramref name="name"/>.</summary>
    public static string StoredName(ITensorSource source, string name) => source switch
    {
        RenamedSource r => StoredName(r.Inner, r.StoredName(name)),
        LoraMergedSource l => StoredName(l.Inner, name),
        ScaledFp8Source f => StoredName(f.Inner, name),
        _ => name,
    };

    /// <summary>The file-level source under the renaming and scaling views.</summary>
    public static ITensorSource Underlying(ITensorSource source) => source switch
    {
        RenamedSource r => Underlying(r.Inner),
        ScaledFp8Source s => Underlying(s.Inner),
        LoraMergedSource l => Underlying(l.Inner),
        _ => source,
    };
}
