namespace Sora.Native;

/// <summary>
/// Where the default model of this package is: the <c>sora-default-model</c> folder that the package copies beside
/// the application when it builds or publishes. Pass <see cref="Directory"/> to <c>WanPipeline.Load</c>.
/// </summary>
public static class DefaultModel
{
    /// <summary>The name of the folder beside the application.</summary>
    public const string FolderName = "sora-default-model";

    /// <summary>The model folder (diffusers layout: model_index.json, transformer/, vae/, text_encoder/, tokenizer/, scheduler/).</summary>
    /// <exception cref="DirectoryNotFoundException">The folder is not beside the application (the package's build step did not run).</exception>
    public static string Directory
    {
        get
        {
            string dir = Path.Combine(AppContext.BaseDirectory, FolderName);
            if (!File.Exists(Path.Combine(dir, "model_index.json")))
                throw new DirectoryNotFoundException(
                    $"{dir}: the default model is not beside the application; the Sora.Native.DefaultModel package copies it there when the app builds or publishes");
            return dir;
        }
    }
}
