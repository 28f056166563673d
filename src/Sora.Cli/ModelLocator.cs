namespace Sora.Cli;

/// <summary>Finds the model folder: --model if given, else the weights/ folder shipped with the program.</summary>
public static class ModelLocator
{
    public const string DefaultFolderName = "weights";

    /// <summary>
    /// The folder named by <paramref name="option"/>, or the first weights/ holding model_index.json found walking
    /// up from the executable's folder, or ./weights. Throws naming what was tried when none exists.
    /// </summary>
    public static string Resolve(string? option)
    {
        if (option is not null)
        {
            if (!Directory.Exists(option)) throw new UsageException($"--model {option}: folder not found");
            return Path.GetFullPath(option);
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, DefaultFolderName);
            if (File.Exists(Path.Combine(candidate, "model_index.json"))) return candidate;
        }
        var local = Path.GetFullPath(DefaultFolderName);
        if (Directory.Exists(local)) return local;
        throw new UsageException($"no model folder: pass --model DIR (found no {DefaultFolderName}/model_index.json beside the sora executable or above it, nor ./{DefaultFolderName})");
    }

    /// <summary>
    /// The component subfolder (e.g. "tokenizer") holding one of <paramref name="markerFiles"/>, or the folder itself
    /// when it already is that component.
    /// </summary>
    public static string Component(string modelDir, string component, params string[] markerFiles)
    {
        var sub = Path.Combine(modelDir, component);
        if (markerFiles.Any(m => File.Exists(Path.Combine(sub, m)))) return sub;
        if (markerFiles.Any(m => File.Exists(Path.Combine(modelDir, m)))) return modelDir;
        throw new UsageException($"{modelDir}: missing {component}/{string.Join(" or ", markerFiles)}");
    }
}
