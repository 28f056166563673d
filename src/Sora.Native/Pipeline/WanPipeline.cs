using Sora.Native.Loading;
using Sora.Native.Schedulers;
using Sora.Native.Text;
using Sora.Native.Video;
using Sora.Native.Wan;
using Sora.Runtime;

namespace Sora.Native.Pipeline;

/// <summary>
/// Wan2.1 and Wan2.2 video generation (diffusers' WanPipeline, WanImageToVideoPipeline with expand_timesteps,
/// WanVideoToVideoPipeline): prompt → UMT5 embeddings (real tokens, zero rows to 512) → flow-matching denoising with
/// classifier-free guidance (both prompts in one packed transformer pass) → de-normalised latents (x·std + mean) →
/// VAE decode → frames in [0, 1]. Conditioning is one mechanism: known latent frames at the start of the clip
/// (<see cref="KnownFrames"/>: an image, or the tail of a clip to extend), or a clip noised part-way (editing).
/// The transformer and VAE are loaded with the pipeline; the tokenizer and text encoder when a prompt is first
/// encoded, and the encoder is released again after encoding unless <see cref="KeepTextEncoder"/> is set.
/// </summary>
public sealed class WanPipeline : IDisposable
{
    /// <summary>Rows of the text embeddings the transformer sees (diffusers' max_sequence_length).</summary>
    public const int TextLength = 512;

    private readonly IBackend _backend;
    private readonly PipelineParts _parts;
    private SentencePieceTokenizer? _tokenizer;
    private Umt5Encoder? _textEncoder;
    private bool _disposed;
    private WanTextContext? _joined;
    private GenerationJob[] _joinedJobs = [];

    private WanPipeline(PipelineParts parts, IBackend backend, WanTransformer transformer, WanVae vae)
    {
        _parts = parts;
        Folder = parts.Folder;
        Defaults = parts.Defaults;
        _backend = backend;
        Transformer = transformer;
        Vae = vae;
    }

    /// <summary>The diffusers folder the pipeline was loaded from; null when it was built from separate files.</summary>
    public ModelFolder? Folder { get; }

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
        var parts = new PipelineParts(folder.Root, folder, GenerationDefaults.Load(folder.Root), folder.TextEncoderDir, folder.TokenizerDir,
            (name, b) => FlowSchedulers.Create(name, folder.SchedulerConfigPath, b));
        return Create(parts, folder.TransformerDir, null, [], folder.VaeDir, null, backend);
    }

    /// <summary>
    /// Loads the transformer (with its LoRAs) and the VAE and checks that they fit each other; the text side of
    /// <paramref name="parts"/> is loaded when a prompt is first encoded. Used by <see cref="Load"/> and
    /// <see cref="WanPipelineBuilder"/>.
    /// </summary>
    internal static WanPipeline Create(PipelineParts parts, string transformerPath, string? transformerConfig, IReadOnlyList<LoraSpec> loras,
        string vaePath, string? vaeConfig, IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        // Fail early on a scheduler this engine cannot run, before gigabytes of weights are read.
        parts.Scheduler(null, backend).Dispose();
        var transformer = WanTransformer.Load(transformerPath, backend, transformerConfig, loras);
        try
        {
            var vae = WanVae.Load(vaePath, backend, vaeConfig);
            if (vae.ZDim != transformer.Config.InChannels || vae.ZDim != transformer.Config.OutChannels)
            {
                vae.Dispose();
                throw new ModelLoadException($"{parts.Name}: the VAE ({vaePath}) has {vae.ZDim} latent channels but the transformer ({transformerPath}) takes {transformer.Config.InChannels} and predicts {transformer.Config.OutChannels}");
            }
            return new WanPipeline(parts, backend, transformer, vae);
        }
        catch
        {
            transformer.Dispose();
            throw;
        }
    }

    /// <summary>Runs one request. Throws <see cref="ArgumentException"/> naming the option for invalid options (a request
    /// too large for the device included, before any work) and <see cref="OperationCanceledException"/> when
    /// <paramref name="ct"/> is cancelled (checked before every step).</summary>
    public GenerationResult Generate(GenerationOptions options, IProgress<StepProgress>? progress = null, CancellationToken ct = default)
    {
        using var job = Start(options, progress, ct);
        while (!job.IsFinished)
        {
            ct.ThrowIfCancellationRequested();
            Step([job]);
        }
        ct.ThrowIfCancellationRequested();
        return Finish(job);
    }

    /// <summary>
    /// Begins a request: checks it (as <see cref="Validate"/>), encodes its prompts and any image or clip, and draws
    /// its noise; the returned job is then advanced by <see cref="Step"/> and decoded by <see cref="Finish(GenerationJob)"/>.
    /// </summary>
    public GenerationJob Start(GenerationOptions options, IProgress<StepProgress>? progress = null, CancellationToken ct = default)
        => Start([options], [progress], ct)[0];

    /// <summary>
    /// Begins several requests at once, each as <see cref="Start(GenerationOptions, IProgress{StepProgress}?, CancellationToken)"/>
    /// does, with every text prompt of all of them (prompts and negative prompts) through the text encoder in one pass.
    /// Every request is checked before any work; the first invalid one throws and nothing is begun.
    /// <paramref name="progress"/>: one reporter (or null) per request, or null for none.
    /// </summary>
    public GenerationJob[] Start(IReadOnlyList<GenerationOptions> requests, IReadOnlyList<IProgress<StepProgress>?>? progress = null, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(requests);
        if (progress is not null && progress.Count != requests.Count)
            throw new ArgumentException($"{progress.Count} progress reporters for {requests.Count} requests", nameof(progress));
        var shapes = requests.Select(Validate).ToArray();
        ct.ThrowIfCancellationRequested();
        var prompts = EncodePrompts(requests, ct);
        var jobs = new List<GenerationJob>(requests.Count);
        try
        {
            for (int i = 0; i < requests.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                jobs.Add(Begin(requests[i], shapes[i], prompts[i], progress?[i]));
            }
            return jobs.ToArray();
        }
        catch
        {
            foreach (var job in jobs) job.Dispose();
            throw;
        }
        finally
        {
            foreach (var (positive, negative) in prompts)
            {
                positive.Dispose();
                negative?.Dispose();
            }
        }
    }

    /// <summary>One checked request with its encoded prompts (the caller's): its scheduler, projected prompts, known frames and noise.</summary>
    private GenerationJob Begin(GenerationOptions options, int[] latentShape, (Tensor Positive, Tensor? Negative) prompts, IProgress<StepProgress>? progress)
    {
        var scheduler = _parts.Scheduler(options.Scheduler, _backend);
        WanTextContext? context = null;
        Tensor? latents = null;
        KnownFrames? known = null;
        try
        {
            scheduler.SetTimesteps(options.Steps, FirstStep(options));
            context = prompts.Negative is null ? Transformer.EncodeText(prompts.Positive) : Transformer.EncodeText(prompts.Positive, prompts.Negative);
            (latents, long? seed) = InitialLatents(options, latentShape);
            known = KnownLatents(options);
            if (options.Video is { } clip && options.VideoRole == VideoRole.Edit) NoiseClip(clip, options, latents, scheduler);
            return new GenerationJob(_backend, options, scheduler, context, latents, known, seed, Transformer.Config.PatchSize, progress);
        }
        catch
        {
            known?.Dispose();
            latents?.Dispose();
            context?.Dispose();
            scheduler.Dispose();
            throw;
        }
    }

    /// <summary>
    /// One denoising step of every job, in one packed transformer pass (patch n' pack): each job's latents (known
    /// frames blended in, their tokens at timestep 0) under its prompt and, with guidance, its negative prompt, each
    /// sequence with its own grid and timesteps; then each job's guidance and its own scheduler update. Jobs may differ
    /// in size, length, step and settings; a job's result does not depend on the others in the pass.
    /// </summary>
    public void Step(IReadOnlyList<GenerationJob> jobs)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(jobs);
        if (jobs.Count == 0) return;
        var sequences = new List<PackedSequence>();
        foreach (var job in jobs)
        {
            if (job.IsFinished) throw new ArgumentException("a finished job cannot be stepped", nameof(jobs));
            var input = job.Input(_backend);
            sequences.Add(input);
            if (job.Guided) sequences.Add(input);
        }
        var predicted = Transformer.Forward(sequences, JoinedContext(jobs));
        try
        {
            int k = 0;
            foreach (var job in jobs)
            {
                var cond = predicted[k++];
                var uncond = job.Guided ? predicted[k++] : null;
                job.Advance(_backend, cond, uncond);
            }
        }
        finally
        {
            foreach (var p in predicted) p.Dispose();
        }
    }

    /// <summary>
    /// Frees what the pipeline keeps between steps for speed (the joined text context of the last packed batch, the
    /// transformer's RoPE tables); all of it is made again on demand. For a server gone idle.
    /// </summary>
    public void ReleaseCaches()
    {
        _joined?.Dispose();
        _joined = null;
        _joinedJobs = [];
        Transformer.ReleaseCaches();
    }

    /// <summary>
    /// The jobs' prompts as one context: one job's own, or a joined copy kept while the same jobs keep stepping together
    /// (a continuous batch changes only when a job joins or leaves).
    /// </summary>
    private WanTextContext JoinedContext(IReadOnlyList<GenerationJob> jobs)
    {
        if (jobs.Count == 1) return jobs[0].Context;
        if (_joined is null || !_joinedJobs.SequenceEqual(jobs))
        {
            _joined?.Dispose();
            _joined = null;
            _joined = Transformer.Concat(jobs.Select(j => j.Context).ToArray());
            _joinedJobs = jobs.ToArray();
        }
        return _joined;
    }

    /// <summary>The result of a finished job: the final latents and, unless only latents were asked for, the decoded video.</summary>
    public GenerationResult Finish(GenerationJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return Finish([job])[0];
    }

    /// <summary>
    /// The results of finished jobs, in order, each as <see cref="Finish(GenerationJob)"/> gives it: the clips of one
    /// latent shape are decoded side by side in one VAE pass (<see cref="WanVae.Decode(IReadOnlyList{Tensor})"/>), as
    /// many together as the device holds by their decode estimates.
    /// </summary>
    public GenerationResult[] Finish(IReadOnlyList<GenerationJob> jobs)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(jobs);
        for (int i = 0; i < jobs.Count; i++)
        {
            var job = jobs[i] ?? throw new ArgumentNullException(nameof(jobs), $"jobs[{i}] is null");
            if (!job.IsFinished)
                throw new ArgumentException($"the job has run {job.StepsDone} of {job.TotalSteps} steps" + (jobs.Count > 1 ? $" (jobs[{i}])" : ""), nameof(jobs));
        }
        var videos = new VideoFrames?[jobs.Count];
        foreach (var group in DecodeGroups(jobs))
        {
            var decoded = Decode(group.Select(i => jobs[i].Latents).ToArray());
            for (int k = 0; k < group.Count; k++) videos[group[k]] = decoded[k];
        }
        var results = new List<GenerationResult>(jobs.Count);
        try
        {
            for (int i = 0; i < jobs.Count; i++)
                results.Add(new GenerationResult { Video = videos[i], Latents = _backend.ToHost(jobs[i].Latents), Seed = jobs[i].Seed });
            return results.ToArray();
        }
        catch
        {
            foreach (var r in results) r.Latents?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The jobs to decode (those asking for video), grouped by latent shape in order of first appearance, each group cut
    /// so that its clips' decode and output estimates together fit the device's memory (at least one clip a group).
    /// </summary>
    private List<List<int>> DecodeGroups(IReadOnlyList<GenerationJob> jobs)
    {
        var groups = new List<List<int>>();
        var open = new Dictionary<string, List<int>>();
        long memory = _backend.Device.MemoryBytes;
        for (int i = 0; i < jobs.Count; i++)
        {
            var o = jobs[i].Options;
            if (o.OutputType != OutputType.Video) continue;
            int[] shape = jobs[i].Latents.Shape;
            var e = Estimate(o, shape, jobs[i].Guided);
            int most = memory > 0 ? (int)Math.Clamp(memory / (Math.Max(e.VaeBytes, 0) + e.OutputBytes), 1, int.MaxValue) : int.MaxValue;
            string key = string.Join("x", shape);
            if (!open.TryGetValue(key, out var group) || group.Count >= most)
            {
                open[key] = group = [];
                groups.Add(group);
            }
            group.Add(i);
        }
        return groups;
    }

    /// <summary>
    /// Checks a request without doing any of its work — every option, and that the device can hold it (see
    /// <see cref="MemoryEstimate"/>) — and returns its latent shape [C, T, h, w]. Throws like <see cref="Generate"/>.
    /// </summary>
    public int[] Validate(GenerationOptions options)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(options);
        int[] latentShape = LatentShape(options);
        CheckSources(options);
        Estimate(options, latentShape, options.Guidance > 1.0).EnsureFits(_backend.Device.MemoryBytes, _backend.Device.Name,
            $"{options.Frames} frames of {options.Width}x{options.Height}", nameof(options.Frames));
        return latentShape;
    }

    /// <summary>
    /// The size multiple of this model's frames (VAE spatial factor × transformer patch: 16 for Wan2.1, 32 for Wan2.2)
    /// and the output size for an image or clip of <paramref name="sourceWidth"/>×<paramref name="sourceHeight"/>
    /// when none is asked for: its aspect ratio within the model's default pixel count (Wan2.2's best_output_size).
    /// </summary>
    public (int Width, int Height) SizeFor(int sourceWidth, int sourceHeight)
    {
        int multiple = SizeMultiple;
        return FrameFit.BestOutputSize(sourceWidth, sourceHeight, (long)Defaults.Width * Defaults.Height, multiple, multiple);
    }

    /// <summary>How this model's pixels map to latents and tokens.</summary>
    public ModelGeometry Geometry => ModelGeometry.From(Transformer.Config, Vae.Config);

    /// <summary>Height and width must be multiples of this: VAE spatial factor × the transformer's spatial patch.</summary>
    public int SizeMultiple => Geometry.SizeMultiple;

    /// <summary>The working-memory estimate of a request (see <see cref="MemoryEstimate"/>).</summary>
    public MemoryEstimate Estimate(GenerationOptions options, int[] latentShape, bool guided)
        => MemoryEstimate.For(Transformer.Config, Vae.Config, latentShape, options.Frames, options.Height, options.Width,
            guided ? 2 : 1, decode: options.OutputType == OutputType.Video, encode: options.Image is not null || options.Video is not null);

    /// <summary>An image or a clip, not both; a clip long enough for its role; strength and extension sizes in range.</summary>
    private void CheckSources(GenerationOptions o)
    {
        if (o.Image is not null && o.Video is not null)
            throw new ArgumentException("Image and Video cannot be given together (image to video or a source clip, not both)", nameof(o.Image));
        if (o.Image is { } image && image.Frames != 1)
            throw new ArgumentException($"Image must be one frame, got {image.Frames}", nameof(o.Image));
        if (o.Video is not { } clip) return;
        int temporal = Vae.Config.TemporalFactor;
        if (o.VideoRole == VideoRole.Edit)
        {
            if (!(o.Strength > 0 && o.Strength <= 1))
                throw new ArgumentException($"Strength = {o.Strength} must be in (0, 1]", nameof(o.Strength));
            if ((int)(o.Steps * o.Strength) < 1)
                throw new ArgumentException($"Strength = {o.Strength} keeps no step of {o.Steps}: raise the strength or the steps", nameof(o.Strength));
            if (clip.Frames < o.Frames)
                throw new ArgumentException($"Video has {clip.Frames} frames, fewer than the {o.Frames} frames asked for", nameof(o.Video));
        }
        else
        {
            if (o.ExtendFrames < 1 || (o.ExtendFrames - 1) % temporal != 0)
                throw new ArgumentException($"ExtendFrames = {o.ExtendFrames} must be {temporal}k+1 (1, {1 + temporal}, {1 + 2 * temporal}, ...)", nameof(o.ExtendFrames));
            if (o.ExtendFrames >= o.Frames)
                throw new ArgumentException($"ExtendFrames = {o.ExtendFrames} must be fewer than the {o.Frames} frames of the new clip", nameof(o.ExtendFrames));
            if (clip.Frames < o.ExtendFrames)
                throw new ArgumentException($"Video has {clip.Frames} frames, fewer than ExtendFrames = {o.ExtendFrames}", nameof(o.ExtendFrames));
        }
    }

    /// <summary>Editing runs the last ⌊steps·strength⌋ steps of the schedule (diffusers' get_timesteps); everything else all.</summary>
    private static int FirstStep(GenerationOptions o)
        => o.Video is not null && o.VideoRole == VideoRole.Edit ? o.Steps - Math.Min((int)(o.Steps * o.Strength), o.Steps) : 0;

    /// <summary>The image (image to video) or the clip's last ExtendFrames frames (extension), encoded as known frames; else null.</summary>
    private KnownFrames? KnownLatents(GenerationOptions o)
    {
        if (o.Image is { } image) return new KnownFrames(_backend, EncodeFrames(image, o, nameof(o.Image)));
        if (o.Video is { } clip && o.VideoRole == VideoRole.Extend)
            return new KnownFrames(_backend, EncodeFrames(clip.Slice(clip.Frames - o.ExtendFrames, o.ExtendFrames), o, nameof(o.Video)));
        return null;
    }

    /// <summary>SDEdit's start: latents ← σ·noise + (1−σ)·x₀ at the first kept step, x₀ the clip's first Frames frames encoded.</summary>
    private void NoiseClip(VideoFrames clip, GenerationOptions o, Tensor latents, IFlowScheduler scheduler)
    {
        using var x0 = EncodeFrames(clip.Slice(0, o.Frames), o, nameof(o.Video));
        float sigma = scheduler.Sigmas[scheduler.FirstStep];
        _backend.LinearCombination([sigma, 1f - sigma], [latents, x0], latents);
    }

    /// <summary>
    /// Frames fitted to Width×Height (aspect kept, centre-cropped), VAE-encoded (posterior mean), normalised
    /// (z − mean)/std: a new device tensor [C, 1 + (F−1)/4, h, w].
    /// </summary>
    private Tensor EncodeFrames(VideoFrames frames, GenerationOptions o, string option)
    {
        var fitted = FrameFit.ResizeCenterCrop(frames, o.Width, o.Height);
        using var host = fitted.ToVaeInput();
        using var pixels = _backend.ToDevice(host);
        var (mean, logVar) = Vae.Encode(pixels);
        logVar.Dispose();
        using (mean)
        {
            int c = mean.Dim(0), positions = (int)(mean.ElementCount / c);
            var scale = Vae.LatentsStd.Select(s => 1f / s).ToArray();
            var shift = Vae.LatentsMean.Select((m, i) => -m * scale[i]).ToArray();
            var normalised = _backend.Allocate(DType.F32, mean.Shape);
            _backend.ChannelAffine(mean.Reshape(c, positions), scale, shift, normalised.Reshape(c, positions));
            return normalised;
        }
    }

    /// <summary>[C, T, h, w] for the requested size, after checking every size option.</summary>
    public int[] LatentShape(GenerationOptions o)
    {
        int spatial = Vae.Config.SpatialFactor, temporal = Vae.Config.TemporalFactor;
        int[] patch = Transformer.Config.PatchSize;
        int multiple = SizeMultiple;
        if (o.Frames < 1 || (o.Frames - 1) % temporal != 0)
            throw new ArgumentException($"Frames = {o.Frames} must be {temporal}k+1 (e.g. {1 + 20 * temporal})", nameof(o.Frames));
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

    /// <summary>
    /// Each request's prompt embeddings and, with guidance, its negative prompt's: caller-given ones as given, every text
    /// through the encoder in one pass. New device tensors [N, text_dim], the caller's to dispose.
    /// </summary>
    private (Tensor Positive, Tensor? Negative)[] EncodePrompts(IReadOnlyList<GenerationOptions> requests, CancellationToken ct)
    {
        var texts = new List<(string? Text, string Option)>();
        foreach (var o in requests)
        {
            if (o.PromptEmbeds is null) texts.Add((o.Prompt, nameof(o.Prompt)));
            if (o.Guidance > 1.0 && o.NegativePromptEmbeds is null) texts.Add((o.NegativePrompt ?? PromptText.DefaultNegativePrompt, nameof(o.NegativePrompt)));
        }
        var encoded = texts.Count == 0 ? [] : EncodeTexts(texts);
        var prompts = new List<(Tensor, Tensor?)>(requests.Count);
        int next = 0;
        try
        {
            foreach (var o in requests)
            {
                ct.ThrowIfCancellationRequested();
                var positive = o.PromptEmbeds is { } pe ? GivenEmbeds(pe, nameof(o.PromptEmbeds)) : encoded[next++];
                Tensor? negative = null;
                try
                {
                    if (o.Guidance > 1.0)
                        negative = o.NegativePromptEmbeds is { } ne ? GivenEmbeds(ne, nameof(o.NegativePromptEmbeds)) : encoded[next++];
                }
                catch
                {
                    positive.Dispose();
                    throw;
                }
                prompts.Add((positive, negative));
            }
            return prompts.ToArray();
        }
        catch
        {
            foreach (var (positive, negative) in prompts)
            {
                positive.Dispose();
                negative?.Dispose();
            }
            for (; next < encoded.Length; next++) encoded[next].Dispose();
            throw;
        }
    }

    /// <summary>
    /// Tokenise each cleaned text (ids + &lt;/s&gt;, at most 512) and encode them all in one pass: device tensors [512, d]
    /// with zero rows after the tokens. The encoder is released afterwards unless <see cref="KeepTextEncoder"/>.
    /// </summary>
    private Tensor[] EncodeTexts(IReadOnlyList<(string? Text, string Option)> texts)
    {
        foreach (var (text, option) in texts)
            if (text is null) throw new ArgumentException($"{option} is null", option);
        if (_parts.TextEncoder is null || _parts.Tokenizer is null)
            throw new ModelLoadException($"{_parts.Name}: no text encoder or tokenizer (text_encoder/ and tokenizer/ of a model folder, or given as files) to encode {texts[0].Option} (pass prompt embeddings instead)");
        _tokenizer ??= PipelineParts.LoadTokenizer(_parts.Tokenizer);
        if (_textEncoder is null)
        {
            _textEncoder = Umt5Encoder.Load(_parts.TextEncoder, _backend);
            int dModel = _textEncoder.Config.DModel;
            if (dModel != Transformer.Config.TextDim)
            {
                ReleaseTextEncoder();
                throw new ModelLoadException($"{_parts.TextEncoder}: d_model {dModel} does not match the transformer's text_dim {Transformer.Config.TextDim}");
            }
        }
        try
        {
            var ids = texts.Select(t => _tokenizer.EncodeForModel(PromptText.Clean(t.Text!), TextLength)).ToArray();
            return _textEncoder.EncodePadded(ids, TextLength);
        }
        finally
        {
            if (!KeepTextEncoder) ReleaseTextEncoder();
        }
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

    /// <summary>Per clip of one latent shape: z = x·std + mean per channel → VAE decode (all together) → clamp(v/2 + ½, 0, 1) → frames [F, H, W, 3].</summary>
    private VideoFrames[] Decode(IReadOnlyList<Tensor> latents)
    {
        var z = new List<Tensor>(latents.Count);
        Tensor[] videos = [];
        try
        {
            foreach (var l in latents)
            {
                int c = l.Dim(0), positions = (int)(l.ElementCount / c);
                z.Add(_backend.Allocate(DType.F32, l.Shape));
                _backend.ChannelAffine(l.Reshape(c, positions), Vae.LatentsStd, Vae.LatentsMean, z[^1].Reshape(c, positions));
            }
            videos = Vae.Decode(z);
            return videos.Select(video =>
            {
                _backend.ScaleShift(video, 0.5f, 0.5f, video);
                _backend.Clamp(video, 0f, 1f, video);
                using var host = _backend.ToHost(video);
                return ToFrames(host.ToFloatArray(), video.Dim(1), video.Dim(2), video.Dim(3));
            }).ToArray();
        }
        finally
        {
            foreach (var t in z) t.Dispose();
            foreach (var v in videos) v.Dispose();
        }
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
        _joined?.Dispose();
        ReleaseTextEncoder();
        Vae.Dispose();
        Transformer.Dispose();
    }
}

/// <summary>
/// What a pipeline holds besides its weights: a name for messages, the folder (if any), its defaults, where the
/// text encoder and tokenizer come from, and how its scheduler is made (solver name or null, backend).
/// </summary>
internal sealed record PipelineParts(string Name, ModelFolder? Folder, GenerationDefaults Defaults, string? TextEncoder, string? Tokenizer,
    Func<string?, IBackend, IFlowScheduler> Scheduler)
{
    /// <summary>A tokenizer folder (spiece.model or tokenizer.json), or one of those files itself.</summary>
    public static SentencePieceTokenizer LoadTokenizer(string path)
    {
        if (Directory.Exists(path)) return SentencePieceTokenizer.Load(path);
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: tokenizer not found");
        return path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
            ? SentencePieceTokenizer.LoadTokenizerJson(path)
            : SentencePieceTokenizer.LoadSentencePieceModel(path);
    }
}
