using Sora.Native.Loading;

namespace Sora.Native.Pipeline;

/// <summary>
/// The clip size and sampling settings a model is meant to run at: Wan2.1's (<see cref="Wan21"/>), or Wan2.2 TI2V's
/// (<see cref="Wan22Ti2v"/>) for a folder whose model_index.json has <c>expand_timesteps: true</c>; a model folder can
/// state its own in <c>generation_defaults.json</c> beside model_index.json (the shipped tiny model does: it was
/// trained on 9 frames of 32×32). Keys: frames, height, width, steps, guidance, fps; any key left out keeps the
/// family's value. That file is Sora.Native's, not part of the diffusers layout. The flow shift is the scheduler
/// config's (3 for Wan2.1 at 480p, 5 for Wan2.2 TI2V).
/// </summary>
public sealed record GenerationDefaults(int Frames, int Height, int Width, int Steps, double Guidance, int Fps)
{
    public const string FileName = "generation_defaults.json";

    /// <summary>Wan2.1-T2V-1.3B's published settings: 81 frames of 832×480, 50 steps, guidance 5, 16 fps.</summary>
    public static GenerationDefaults Wan21 { get; } = new(81, 480, 832, 50, 5.0, 16);

    /// <summary>Wan2.2-TI2V-5B's published settings: 121 frames of 1280×704, 50 steps, guidance 5, 24 fps.</summary>
    public static GenerationDefaults Wan22Ti2v { get; } = new(121, 704, 1280, 50, 5.0, 24);

    /// <summary>Options for <paramref name="prompt"/> at these settings (everything else at its default).</summary>
    public GenerationOptions Options(string prompt) => new()
    {
        Prompt = prompt, Frames = Frames, Height = Height, Width = Width, Steps = Steps, Guidance = Guidance,
    };

    /// <summary>The folder's generation_defaults.json over its family's defaults, or those when there is none.</summary>
    public static GenerationDefaults Load(string modelDir)
    {
        string manifest = System.IO.Path.Combine(modelDir, ModelFolder.ManifestName);
        var family = File.Exists(manifest) && ConfigJson.Load(manifest, "model index").Bool("expand_timesteps", false) ? Wan22Ti2v : Wan21;
        string path = System.IO.Path.Combine(modelDir, FileName);
        if (!File.Exists(path)) return family;
        var json = ConfigJson.Load(path, "generation defaults");
        var d = new GenerationDefaults(
            json.Int("frames", family.Frames), json.Int("height", family.Height), json.Int("width", family.Width),
            json.Int("steps", family.Steps), json.Double("guidance", family.Guidance), json.Int("fps", family.Fps));
        if (d.Frames < 1 || (d.Frames - 1) % 4 != 0) throw json.Error("frames", $"must be 4k+1, got {d.Frames}");
        if (d.Height < 16 || d.Height % 16 != 0) throw json.Error("height", $"must be a positive multiple of 16, got {d.Height}");
        if (d.Width < 16 || d.Width % 16 != 0) throw json.Error("width", $"must be a positive multiple of 16, got {d.Width}");
        if (d.Steps < 1) throw json.Error("steps", $"must be at least 1, got {d.Steps}");
        if (!double.IsFinite(d.Guidance) || d.Guidance < 0) throw json.Error("guidance", $"must be a finite number >= 0, got {d.Guidance}");
        if (d.Fps < 1) throw json.Error("fps", $"must be at least 1, got {d.Fps}");
        return d;
    }
}
