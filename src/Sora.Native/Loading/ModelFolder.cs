namespace Sora.Native.Loading;

/// <summary>
/// A Wan2.1 model folder in the diffusers layout: model_index.json plus one subfolder per component
/// (transformer/, vae/, scheduler/, and for text prompts text_encoder/ and tokenizer/).
/// The scheduler class is taken from scheduler/scheduler_config.json's <c>_class_name</c>, not from the manifest
/// (the published manifest was edited after upload; see wan-architecture.md 1.2).
/// </summary>
public sealed record ModelFolder(
    string Root,
    string TransformerDir,
    string VaeDir,
    string SchedulerConfigPath,
    string SchedulerClass,
    string? TextEncoderDir,
    string? TokenizerDir)
{
    public const string ManifestName = "model_index.json";

    /// <summary>
    /// model_index.json's <c>expand_timesteps</c> (Wan2.2 TI2V): the model's own text-to-video gives every token its
    /// timestep. With no known frames every token has the same one, so it changes nothing then; image-to-video and
    /// extension always give known tokens timestep 0 (the TI2V rule), whatever this says.
    /// </summary>
    public bool ExpandTimesteps { get; init; }

    /// <summary>Checks the layout and names the first missing or malformed part in a <see cref="ModelLoadException"/>.</summary>
    public static ModelFolder Open(string modelDir)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        if (!Directory.Exists(modelDir)) throw new ModelLoadException($"{modelDir}: model folder not found");
        string manifest = Path.Combine(modelDir, ManifestName);
        if (!File.Exists(manifest))
            throw new ModelLoadException($"{manifest}: not found ({modelDir} is not a diffusers model folder)");
        bool expandTimesteps = CheckManifest(manifest);

        string Required(string name)
        {
            string dir = Path.Combine(modelDir, name);
            if (!Directory.Exists(dir)) throw new ModelLoadException($"{dir}: component folder '{name}' not found");
            return dir;
        }
        string? Optional(string name)
        {
            string dir = Path.Combine(modelDir, name);
            return Directory.Exists(dir) ? dir : null;
        }

        string transformer = Required("transformer"), vae = Required("vae"), scheduler = Required("scheduler");
        string schedulerConfig = Path.Combine(scheduler, "scheduler_config.json");
        string schedulerClass = ConfigJson.Load(schedulerConfig, "scheduler config").RequiredString("_class_name");
        return new ModelFolder(modelDir, transformer, vae, schedulerConfig, schedulerClass, Optional("text_encoder"), Optional("tokenizer"))
        {
            ExpandTimesteps = expandTimesteps,
        };
    }

    /// <summary>
    /// The manifest must be a JSON object for a Wan pipeline; components and unknown keys are not interpreted.
    /// Returns its expand_timesteps flag.
    /// </summary>
    private static bool CheckManifest(string path)
    {
        var config = ConfigJson.Load(path, "model index");
        string? className = config.String("_class_name");
        if (className is not null && !className.StartsWith("Wan", StringComparison.Ordinal))
            throw new ModelLoadException($"{path}: _class_name is '{className}', expected a Wan pipeline (WanPipeline)");
        return config.Bool("expand_timesteps", false);
    }
}
