using System.Diagnostics;
using Sora.Native.Loading;
using Sora.Native.Schedulers;
using Sora.Native.Text;
using Sora.Native.Video;
using Sora.Native.Wan;
using Sora.Runtime;

namespace Sora.Native.Pipeline;

/// <summary>
/// Wan2.1 text-to-video (diffusers' WanPipeline): prompt → UMT5 embeddings (real tokens, zero rows to 512) →
/// flow-matching denoising with classifier-free guidance (both prompts in one packed transformer pass) →
/// de-normalised latents (x·std + mean) → VAE decode → frames in [0, 1].
/// The transformer and VAE are loaded with the pipeline; the tokenizer and text encoder when a prompt is first
/// encoded, and the encoder is released again after encoding unless <see cref="KeepTextEncoder"/> is set.
/// </summary>
public sealed class WanPipeline : IDisposable
{
    /// <summary>Rows of the text embeddings the transformer sees (diffusers' max_sequence_length).</summary>
    public const int TextLength = 512;

    private readonly IBackend _backend;
    private SentencePieceTokenizer? _tokenizer;
    private Umt5Encoder? _textEncoder;
    private bool _disposed;

    private WanPipeline(ModelFolder folder, GenerationDefaults defaults, IBackend backend, WanTransformer transformer, WanVae vae)
    {
        Folder = folder;
        Defaults = defaults;
        _backend = backend;
        Transformer = transformer;
        Vae = vae;
    }

    public ModelFolder Folder { get; }

    /// <summary>The clip size and settings this model is meant for (its generation_defaults.json, else Wan2.1's).</summary>
    public GenerationDefaults Defaults { get; }
    public WanTransformer Transformer { get; }
    public WanVae Vae { get; }

    /// <summary>Keep the text encoder's weights loaded between generations (default: free them after encoding).</summary>
    public bool KeepTextEncoder { get; set; }

    /// <summary>Loads a diffusers Wan2.1 model folder (model_index.json, transformer/, vae/, scheduler/, text_encoder/, tokenizer/).</summary>
    public static WanPipeline Load(string modelDir, IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        var folder = ModelFolder.Open(modelDir);
        var defaults = GenerationDefaults.Load(folder.Root);
        // Fail early on a scheduler this engine cannot run, before gigabytes of weights are read.
        FlowSchedulers.Create(null, folder.SchedulerConfigPath, backend).Dispose();
        var transformer = WanTransformer.Load(folder.TransformerDir, backend);
        try
        {
            var vae = WanVae.Load(folder.VaeDir, backend);
            if (vae.ZDim != transformer.Config.InChannels || vae.ZDim != transformer.Config.OutChannels)
            {
                vae.Dispose();
                throw new ModelLoadException($"{folder.Root}: the VAE has {vae.ZDim} latent channels but the transformer takes {transformer.Config.InChannels} and predicts {transformer.Config.OutChannels}");
            }
            return new WanPipeline(folder, defaults, backend, transformer, vae);
        }
        catch
        {
            transformer.Dispose();
            throw;
        }
    }

    /// <summary>Runs one request. Throws <see cref="ArgumentException"/> naming the option for invalid options and
    /// <see cref="OperationCanceledException"/> when <paramref name="ct"/> is cancelled (checked before every step).</summary>
    public GenerationResult Generate(GenerationOptions options, IProgress<StepProgress>? progress = null, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(options);
        int[] latentShape = LatentShape(options);
        bool guided = options.Guidance > 1.0;
        var clock = Stopwatch.StartNew();
        ct.ThrowIfCancellationRequested();

        using var scheduler = FlowSchedulers.Create(options.Scheduler, Folder.SchedulerConfigPath, _backend);
        using var context = EncodePrompts(options, guided, ct);
        (Tensor latents, long? seed) = InitialLatents(options, latentShape);
        using (latents)
        {
            Denoise(latents, context, scheduler, options, guided, progress, clock, ct);
            ct.ThrowIfCancellationRequested();
            var hostLatents = _backend.ToHost(latents);
            try
            {
                var video = options.OutputType == OutputType.Video ? Decode(latents) : null;
                return new GenerationResult { Video = video, Latents = hostLatents, Seed = seed };
            }
            catch
            {
                hostLatents.Dispose();
                throw;
            }
        }
    }

    /// <summary>The denoising loop: per step one packed transformer pass, guidance, and the scheduler update in place.</summary>
    private void Denoise(Tensor latents, WanTextContext context, IFlowScheduler scheduler, GenerationOptions options, bool guided,
        IProgress<StepProgress>? progress, Stopwatch clock, CancellationToken ct)
    {
        scheduler.SetTimesteps(options.Steps);
        int steps = scheduler.Timesteps.Count;
        int[] shape = latents.Shape;
        using var velocity = guided ? _backend.Allocate(DType.F32, shape) : null;
        for (int i = 0; i < steps; i++)
        {
            ct.ThrowIfCancellationRequested();
            float timestep = scheduler.Timesteps[i];
            using var predicted = Transformer.Forward(latents, timestep, context);
            var cond = predicted.Slice(0, 0, 1).Reshape(shape);
            if (velocity is not null)
            {
                var uncond = predicted.Slice(0, 1, 1).Reshape(shape);
                _backend.CfgCombine(uncond, cond, (float)options.Guidance, velocity);
            }
            scheduler.Step(velocity ?? cond, latents);
            progress?.Report(new StepProgress(i + 1, steps, clock.Elapsed));
            options.OnStep?.Invoke(new StepInfo(i + 1, steps, timestep, scheduler.Sigmas[i + 1], clock.Elapsed));
        }
    }

    /// <summary>[C, T, h, w] for the requested size, after checking every size option.</summary>
    private int[] LatentShape(GenerationOptions o)
    {
        int spatial = Vae.Config.SpatialFactor, temporal = Vae.Config.TemporalFactor;
        int[] patch = Transformer.Config.PatchSize;
        int multiple = spatial * Math.Max(patch[1], patch[2]);
        if (o.Frames < 1 || (o.Frames - 1) % temporal != 0)
            throw new ArgumentException($"Frames = {o.Frames} must be {temporal}k+1 (e.g. 81)", nameof(o.Frames));
        if (o.Height < multiple || o.Height % multiple != 0)
            throw new ArgumentException($"Height = {o.Height} must be a positive multiple of {multiple}", nameof(o.Height));
        if (o.Width < multiple || o.Width % multiple != 0)
            throw new ArgumentException($"Width = {o.Width} must be a positive multiple of {multiple}", nameof(o.Width));
        if (o.Steps < 1) throw new ArgumentException($"Steps = {o.Steps} must be at least 1", nameof(o.Steps));
        if (!double.IsFinite(o.Guidance)) throw new ArgumentException($"Guidance = {o.Guidance} must be a finite number", nameof(o.Guidance));
        if (o.Scheduler is not null && !FlowSchedulers.Names.Contains(o.Scheduler.ToLowerInvariant()))
            throw new ArgumentException($"Scheduler = '{o.Scheduler}' is not one of {string.Join(", ", FlowSchedulers.Names)}", nameof(o.Scheduler));
        int latentFrames = (o.Frames - 1) / temporal + 1;
        if (latentFrames % patch[0] != 0)
            throw new ArgumentException($"Frames = {o.Frames} gives {latentFrames} latent frames, not a multiple of the patch size {patch[0]}", nameof(o.Frames));
        return [Transformer.Config.InChannels, latentFrames, o.Height / spatial, o.Width / spatial];
    }

    /// <summary>The caller's latents (checked against the size options) or seeded noise, on the backend.</summary>
    private (Tensor Latents, long? Seed) InitialLatents(GenerationOptions o, int[] shape)
    {
        if (o.Latents is { } given)
        {
            var data = HostRows(given, shape, nameof(o.Latents),
                $"Frames {o.Frames}, Height {o.Height}, Width {o.Width}");
            using var host = Tensor.FromArray(data, shape);
            return (_backend.ToDevice(host), null);
        }
        long seed = o.Seed ?? Random.Shared.NextInt64();
        var noise = new GaussianNoise(seed).Sample(shape.Aggregate(1L, (a, b) => a * b));
        using var hostNoise = Tensor.FromArray(noise, shape);
        return (_backend.ToDevice(hostNoise), seed);
    }

    /// <summary>The prompt (and, with guidance, the negative prompt) projected for cross-attention, in that order.</summary>
    private WanTextContext EncodePrompts(GenerationOptions o, bool guided, CancellationToken ct)
    {
        using var positive = o.PromptEmbeds is { } pe ? GivenEmbeds(pe, nameof(o.PromptEmbeds)) : EncodeText(o.Prompt, nameof(o.Prompt));
        ct.ThrowIfCancellationRequested();
        using var negative = !guided ? null
            : o.NegativePromptEmbeds is { } ne ? GivenEmbeds(ne, nameof(o.NegativePromptEmbeds))
            : EncodeText(o.NegativePrompt ?? PromptText.DefaultNegativePrompt, nameof(o.NegativePrompt));
        if (!KeepTextEncoder) ReleaseTextEncoder();
        return negative is null ? Transformer.EncodeText(positive) : Transformer.EncodeText(positive, negative);
    }

    /// <summary>Tokenise the cleaned text (ids + &lt;/s&gt;, at most 512) and encode it: a device tensor [512, d] with zero rows after the tokens.</summary>
    private Tensor EncodeText(string? text, string option)
    {
        if (text is null) throw new ArgumentException($"{option} is null", option);
        if (Folder.TextEncoderDir is null || Folder.TokenizerDir is null)
            throw new ModelLoadException($"{Folder.Root}: no text_encoder/ or tokenizer/ folder to encode {option} (pass prompt embeddings instead)");
        _tokenizer ??= SentencePieceTokenizer.Load(Folder.TokenizerDir);
        if (_textEncoder is null)
        {
            _textEncoder = Umt5Encoder.Load(Folder.TextEncoderDir, _backend);
            int dModel = _textEncoder.Config.DModel;
            if (dModel != Transformer.Config.TextDim)
            {
                ReleaseTextEncoder();
                throw new ModelLoadException($"{Folder.TextEncoderDir}: d_model {dModel} does not match the transformer's text_dim {Transformer.Config.TextDim}");
            }
        }
        int[] ids = _tokenizer.EncodeForModel(PromptText.Clean(text), TextLength);
        return _textEncoder.EncodePadded(ids, TextLength);
    }

    /// <summary>Caller-given embeddings [N, text_dim] or [1, N, text_dim] on the backend, used as given (diffusers does not re-pad them).</summary>
    private Tensor GivenEmbeds(Tensor embeds, string option)
    {
        int d = Transformer.Config.TextDim;
        int rows = embeds.Rank switch
        {
            2 => embeds.Dim(0),
            3 when embeds.Dim(0) == 1 => embeds.Dim(1),
            _ => throw new ArgumentException($"{option} must be [N, {d}] or [1, N, {d}], got {embeds.ShapeString}", option),
        };
        int[] shape = [rows, d];
        var data = HostRows(embeds, shape, option, $"text_dim {d}");
        using var host = Tensor.FromArray(data, shape);
        return _backend.ToDevice(host);
    }

    /// <summary>The values of a caller tensor shaped <paramref name="shape"/> or [1, ..shape], as host floats.</summary>
    private float[] HostRows(Tensor t, int[] shape, string option, string because)
    {
        bool fits = t.Shape.SequenceEqual(shape) || (t.Rank == shape.Length + 1 && t.Dim(0) == 1 && t.Shape[1..].SequenceEqual(shape));
        if (!fits)
            throw new ArgumentException($"{option} has shape {t.ShapeString}, expected [{string.Join(", ", shape)}] or [1, {string.Join(", ", shape)}] ({because})", option);
        if (t.IsHost) return t.ToFloatArray();
        using var host = _backend.ToHost(t);
        return host.ToFloatArray();
    }

    /// <summary>z = x·std + mean per channel → VAE decode → clamp(v/2 + ½, 0, 1) → frames [F, H, W, 3].</summary>
    private VideoFrames Decode(Tensor latents)
    {
        int c = latents.Dim(0), positions = (int)(latents.ElementCount / c);
        using var z = _backend.Allocate(DType.F32, latents.Shape);
        _backend.ChannelAffine(latents.Reshape(c, positions), Vae.LatentsStd, Vae.LatentsMean, z.Reshape(c, positions));
        using var video = Vae.Decode(z);
        _backend.ScaleShift(video, 0.5f, 0.5f, video);
        _backend.Clamp(video, 0f, 1f, video);
        using var host = _backend.ToHost(video);
        return ToFrames(host.ToFloatArray(), video.Dim(1), video.Dim(2), video.Dim(3));
    }

    /// <summary>[3, F, H, W] planes → interleaved RGB [F, H, W, 3].</summary>
    private static VideoFrames ToFrames(float[] planes, int frames, int height, int width)
    {
        long plane = (long)frames * height * width;
        var rgb = new float[plane * 3];
        for (long p = 0; p < plane; p++)
        {
            rgb[3 * p] = planes[p];
            rgb[3 * p + 1] = planes[plane + p];
            rgb[3 * p + 2] = planes[2 * plane + p];
        }
        return new VideoFrames(frames, height, width, rgb);
    }

    private void ReleaseTextEncoder()
    {
        _textEncoder?.Dispose();
        _textEncoder = null;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ReleaseTextEncoder();
        Vae.Dispose();
        Transformer.Dispose();
    }
}
