using Sora.Runtime;
using Sora.Runtime.Safetensors;

namespace Sora.Cli;

/// <summary>Reads the one-tensor files that --latents, --prompt-embeds and --negative-prompt-embeds name.</summary>
public static class TensorFiles
{
    /// <summary>
    /// The tensor called <paramref name="preferredName"/>, or the only tensor of the file, copied to an owned float32
    /// host tensor (the file is closed afterwards).
    /// </summary>
    public static Tensor ReadSingle(string path, string preferredName, string option)
    {
        if (!File.Exists(path)) throw new UsageException($"{option} {path}: file not found");
        using var file = SafetensorsFile.Open(path);
        var names = file.Names.ToList();
        string name = names.Contains(preferredName) ? preferredName
            : names.Count == 1 ? names[0]
            : throw new UsageException($"{option} {path}: holds {names.Count} tensors and none is named '{preferredName}'");
        using var stored = file.Get(name);
        return Tensor.FromArray(stored.ToFloatArray(), stored.Shape);
    }
}
