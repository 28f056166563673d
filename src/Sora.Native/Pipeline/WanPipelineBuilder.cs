using Sora.Native.Loading;
using Sora.Native.Schedulers;
using Sora.Native.Wan;
using Sora.Runtime;

namespace Sora.Native.Pipeline;

/// <summary>
/// A <see cref="WanPipeline"/> from parts, as people download them: each of the transformer, VAE, text encoder and
/// tokenizer a folder or a single file (see <see cref="WanTransformer.Load"/>, <see cref="WanVae.Load"/>,
/// <see cref="Text.Umt5Encoder.Load"/>), any part left out taken from the diffusers folder <see cref="Model"/>;
/// LoRAs merged into the transformer. Single files carry no scheduler config: without a folder the scheduler is
/// Wan2.1's (UniPC, flow prediction) at <see cref="FlowShift"/> (default 3.0, Wan2.1's 480p setting); with one,
/// its scheduler config, <see cref="FlowShift"/> replacing its shift when given. A part that arrives as a stream is
/// given as the path of a <see cref="SpooledFile"/> (the readers map files).
/// </summary>
public sealed record WanPipelineBuilder
{
    /// <summary>Wan2.1's flow shift for 480p (the Wan repository's sample_shift; 5.0 is its 720p setting).</summary>
    public const double DefaultFlowShift = 3.0;

    /// <summary>A diffusers model folder that supplies the parts not given (and the scheduler config and defaults).</summary>
    public string? Model { get; init; }
    public string? Transformer { get; init; }
    /// <summary>An explicit transformer config: the Wan repository's config.json keys, or a diffusers transformer config.</summary>
    public string? TransformerConfig { get; init; }
    public string? Vae { get; init; }
    /// <summary>A diffusers vae config.json for a single VAE file (needed only for latent statistics other than Wan2.1's).</summary>
    public string? VaeConfig { get; init; }
    public string? TextEncoder { get; init; }
    /// <summary>A tokenizer folder, or its spiece.model or tokenizer.json.</summary>
    public string? Tokenizer { get; init; }
    public IReadOnlyList<LoraSpec> Loras { get; init; } = [];
    public double? FlowShift { get; init; }

    /// <summary>Loads the transformer and VAE onto <paramref name="backend"/>; the text side loads when a prompt is first encoded.</summary>
    public WanPipeline Build(IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        var r = Resolve();
        return WanPipeline.Create(Parts(r), r.Transformer, TransformerConfig, Loras, r.Vae, VaeConfig, backend);
    }

    /// <summary>How the model's pixels map to latents, from the configs or the files' headers only (no weights read).</summary>
    public ModelGeometry Geometry()
    {
        var r = Resolve();
        return ModelGeometry.From(WanComponents.TransformerConfig(r.Transformer, TransformerConfig), WanComponents.VaeConfig(r.Vae, VaeConfig));
    }

    /// <summary>The folder's generation defaults, or Wan2.1's without a folder.</summary>
    public GenerationDefaults Defaults() => Model is null ? GenerationDefaults.Wan21 : GenerationDefaults.Load(Model);

    private sealed record Resolved(ModelFolder? Folder, string Transformer, string Vae, string? TextEncoder, string? Tokenizer);

    private Resolved Resolve()
    {
        if (FlowShift is { } s && (!double.IsFinite(s) || s <= 0))
            throw new ArgumentOutOfRangeException(nameof(FlowShift), s, "flow shift must be a positive number");
        var folder = Model is null ? null : ModelFolder.Open(Model, transformerGiven: Transformer is not null, vaeGiven: Vae is not null);
        string transformer = Transformer ?? folder?.TransformerDir ?? throw new ArgumentException("no transformer: give a transformer file or a model folder", nameof(Transformer));
        string vae = Vae ?? folder?.VaeDir ?? throw new ArgumentException("no VAE: give a VAE file or a model folder", nameof(Vae));
        return new Resolved(folder, transformer, vae, TextEncoder ?? folder?.TextEncoderDir, Tokenizer ?? folder?.TokenizerDir);
    }

    private PipelineParts Parts(Resolved r)
    {
        double? shift = FlowShift;
        Func<string?, IBackend, IFlowScheduler> scheduler = r.Folder is { } f
            ? (name, b) => FlowSchedulers.Create(name, f.SchedulerConfigPath, b, shift)
            : (name, b) => FlowSchedulers.CreateDefault(name, shift ?? DefaultFlowShift, b);
        return new PipelineParts(r.Folder?.Root ?? r.Transformer, r.Folder, Defaults(), r.TextEncoder, r.Tokenizer, scheduler);
    }
}
