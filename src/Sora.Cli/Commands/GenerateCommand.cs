using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Sora.Kernels;
using Sora.Native.Loading;
using Sora.Native.Pipeline;
using Sora.Native.Text;
using Sora.Native.Video;
using Sora.Runtime;
using Sora.Runtime.Safetensors;

namespace Sora.Cli;

/// <summary>
/// <c>sora generate "prompt"</c>: text to video, image to video (<c>--image</c>), editing a clip by prompt
/// (<c>--video --strength</c>) and continuing one (<c>--extend --extend-frames</c>), with Wan2.1 and Wan2.2 models.
/// </summary>
public static class GenerateCommand
{
    public static readonly string[] Schedulers = ["unipc", "euler"];
    public static readonly string[] OutputTypes = ["video", "latent"];

    private const string ModelDefault = "Default: the model's (its " + GenerationDefaults.FileName + "), else Wan2.1's";

    private sealed record Options(
        Argument<string?> Prompt, Option<string?> NegativePrompt, Option<string?> Model, Option<int> Frames, Option<int> Height,
        Option<int> Width, Option<int> Steps, Option<double> Guidance, Option<long> Seed, Option<string> Scheduler,
        Option<string> Device, Option<string?> Out, Option<int> Fps, Option<string?> Latents, Option<string?> PromptEmbeds,
        Option<string?> NegativePromptEmbeds, Option<string> OutputType, Option<string?> Image, Option<string?> Video,
        Option<double> Strength, Option<string?> Extend, Option<int> ExtendFrames, Option<bool> Join, Parts Parts);

    /// <summary>The options that name the model's parts as separate files.</summary>
    private sealed record Parts(Option<string?> Transformer, Option<string?> TransformerConfig, Option<string?> Vae, Option<string?> TextEncoder,
        Option<string?> Tokenizer, Option<string[]> Lora, Option<double> FlowShift)
    {
        public static Parts Create() => new(
            new Option<string?>("--transformer") { Description = "Transformer from a file: a Wan2.1 single file (original or diffusers names, e.g. ComfyUI's wan2.1_t2v_1.3B_fp16.safetensors), a .gguf file, or a diffusers transformer/ folder. Default: --model's.", HelpName = "FILE" },
            new Option<string?>("--transformer-config") { Description = "Config for a single transformer file: the Wan repository's config.json keys (dim, num_heads, ...) or a diffusers config; needed when dim is not a multiple of 128 (heads = dim/128 otherwise).", HelpName = "FILE" },
            new Option<string?>("--vae") { Description = "VAE from a file (wan_2.1_vae.safetensors, original layout) or a diffusers vae/ folder. Default: --model's.", HelpName = "FILE" },
            new Option<string?>("--text-encoder") { Description = "UMT5 text encoder from a file (Hugging Face names, e.g. ComfyUI's umt5_xxl_*.safetensors) or a folder. Default: --model's.", HelpName = "FILE" },
            new Option<string?>("--tokenizer") { Description = "Tokenizer folder, or its spiece.model or tokenizer.json. Default: --model's.", HelpName = "DIR|FILE" },
            new Option<string[]>("--lora") { Description = "LoRA merged into the transformer, FILE or FILE:STRENGTH (default strength 1); repeatable. ComfyUI/kohya and diffusers/peft layouts.", HelpName = "FILE[:S]", Arity = ArgumentArity.ZeroOrMore },
            new Option<double>("--flow-shift") { Description = "Shift of the flow-matching schedule. Default: the model folder's scheduler config, else 3.0 (Wan2.1 at 480p; 5.0 suits 720p).", HelpName = "S" });

        public IEnumerable<Option> All => [Transformer, TransformerConfig, Vae, TextEncoder, Tokenizer, Lora, FlowShift];
    }

    public static Command Build(CliContext context)
    {
        var o = new Options(
            new Argument<string?>("prompt") { Description = "What the video shows. May be left out when --prompt-embeds is given.", Arity = ArgumentArity.ZeroOrOne },
            new Option<string?>("--negative-prompt", "-n") { Description = "What to steer away from (default: Wan's own negative prompt).", HelpName = "TEXT" },
            Commands.ModelOption(),
            new Option<int>("--frames", "-f") { Description = "Number of frames, 4k+1 (with --latents: taken from them). " + ModelDefault + " 81.", HelpName = "N" },
            new Option<int>("--height") { Description = "Height in pixels, a multiple of 16 (with --latents: taken from them). " + ModelDefault + " 480.", HelpName = "PX" },
            new Option<int>("--width") { Description = "Width in pixels, a multiple of 16 (with --latents: taken from them). " + ModelDefault + " 832.", HelpName = "PX" },
            new Option<int>("--steps", "-s") { Description = "Denoising steps. " + ModelDefault + " 50.", HelpName = "N" },
            new Option<double>("--guidance", "-g") { Description = "Classifier-free guidance scale (1 turns guidance off). " + ModelDefault + " 5.", HelpName = "SCALE" },
            new Option<long>("--seed") { Description = "Seed of the initial noise (default: random, printed).", HelpName = "N" },
            new Option<string>("--scheduler") { Description = "Sampler: unipc (Wan's default) or euler (flow-match Euler).", DefaultValueFactory = _ => "unipc", HelpName = "unipc|euler" },
            Commands.DeviceOption(),
            new Option<string?>("--out", "-o")
            {
                Description = "Output: .mp4 (needs ffmpeg), .gif, .y4m, or a folder for PNG frames (a path ending in / or without extension, e.g. frames/); "
                    + "with --output-type latent a .safetensors file. Default output.gif (latents.safetensors).",
                HelpName = "PATH",
            },
            new Option<int>("--fps") { Description = "Frame rate of the written video. " + ModelDefault + " 16.", HelpName = "N" },
            new Option<string?>("--latents") { Description = "Initial noise [C, T, h, w] or [1, C, T, h, w] from a .safetensors file (tensor 'latents' or its only tensor).", HelpName = "FILE" },
            new Option<string?>("--prompt-embeds") { Description = "Prompt embedding [512, d] or [1, 512, d] from a .safetensors file (see encode-prompt) instead of encoding the prompt.", HelpName = "FILE" },
            new Option<string?>("--negative-prompt-embeds") { Description = "Negative prompt embedding from a .safetensors file.", HelpName = "FILE" },
            new Option<string>("--output-type") { Description = "video, or latent to save the final latents [1, C, T, h, w] (no VAE decode).", DefaultValueFactory = _ => "video", HelpName = "video|latent" },
            new Option<string?>("--image", "-i") { Description = "Image to video: a PNG or JPEG that becomes the first frame (fitted to the size: aspect kept, centre-cropped; with no size given the size follows its aspect ratio).", HelpName = "FILE" },
            new Option<string?>("--video") { Description = "Edit a clip by the prompt (video to video): a PNG/JPEG, a folder of frames, .y4m, .gif or .mp4 (ffmpeg). Frames default to the clip's (4k+1).", HelpName = "PATH" },
            new Option<double>("--strength") { Description = "With --video: how much of the schedule is run again, in (0, 1]; 1 redraws from noise. Default 0.8.", HelpName = "S" },
            new Option<string?>("--extend") { Description = "Continue a clip (same inputs as --video): its last --extend-frames frames start the new clip.", HelpName = "PATH" },
            new Option<int>("--extend-frames") { Description = "With --extend: how many of the clip's last frames are kept as the start, 4k+1. Default 5.", HelpName = "N" },
            new Option<bool>("--join") { Description = "With --extend: write the source clip followed by the continuation as one clip." },
            Parts.Create());

        var command = new Command("generate", "Generate a video from a text prompt, optionally from an image or a clip.")
        {
            o.Prompt, o.NegativePrompt, o.Model, o.Frames, o.Height, o.Width, o.Steps, o.Guidance, o.Seed, o.Scheduler,
            o.Device, o.Out, o.Fps, o.Latents, o.PromptEmbeds, o.NegativePromptEmbeds, o.OutputType,
            o.Image, o.Video, o.Strength, o.Extend, o.ExtendFrames, o.Join,
        };
        foreach (var option in o.Parts.All) command.Options.Add(option);
        command.SetAction(parse => Run(context, parse, o));
        return command;
    }

    private static int Run(CliContext context, ParseResult parse, Options o)
    {
        // Everything that can be checked without the model is checked first, the output path included.
        string scheduler = parse.GetValue(o.Scheduler)!;
        if (!Schedulers.Contains(scheduler)) throw new UsageException($"--scheduler: unknown scheduler '{scheduler}' (choose unipc or euler)");
        string device = Commands.CheckDevice(parse.GetValue(o.Device)!);
        string outputType = parse.GetValue(o.OutputType)!;
        if (!OutputTypes.Contains(outputType)) throw new UsageException($"--output-type: unknown type '{outputType}' (choose video or latent)");
        bool latentOut = outputType == "latent";
        int? steps = Value(parse, o.Steps);
        if (steps < 1) throw new UsageException($"--steps must be at least 1, got {steps}");
        double? guidance = Value(parse, o.Guidance);
        if (guidance is { } g && (!double.IsFinite(g) || g < 0)) throw new UsageException($"--guidance must be a finite number >= 0, got {g}");
        int? fps = Value(parse, o.Fps);
        if (fps < 1) throw new UsageException($"--fps must be at least 1, got {fps}");
        string? prompt = parse.GetValue(o.Prompt);
        string? promptEmbedsPath = parse.GetValue(o.PromptEmbeds);
        if (prompt is null && promptEmbedsPath is null) throw new UsageException("generate: give a prompt (or --prompt-embeds FILE)");

        var sources = Sources.Check(parse, o);
        if (parse.GetValue(o.Join) && (latentOut || sources.Role != VideoRole.Extend))
            throw new UsageException("--join: only with --extend and a video output");

        var target = OutputTarget.Parse(parse.GetValue(o.Out) ?? (latentOut ? OutputTarget.DefaultLatents : OutputTarget.DefaultVideo), latentOut);
        target.EnsureWritable();

        var builder = Builder(parse, o);
        string modelName = builder.Model ?? builder.Transformer!;
        var defaults = builder.Defaults();
        var geometry = Rejected(builder.Geometry);
        sources.CheckExtendFrames(geometry);
        var source = sources.Read();
        using var latents = Load(parse.GetValue(o.Latents), "latents", "--latents");
        var (frames, height, width) = Size(parse, o, latents, defaults, geometry, source, sources);
        sources.CheckLength(source, frames);
        using var promptEmbeds = Load(promptEmbedsPath, "prompt_embeds", "--prompt-embeds");
        using var negativeEmbeds = Load(parse.GetValue(o.NegativePromptEmbeds), "negative_prompt_embeds", "--negative-prompt-embeds");
        int stepCount = steps ?? defaults.Steps, frameRate = fps ?? defaults.Fps;
        double scale = guidance ?? defaults.Guidance;
        long? seed = Given(parse, o.Seed) ? parse.GetValue(o.Seed) : null;

        var clock = Stopwatch.StartNew();
        using var backend = Commands.CreateBackend(device);
        using var pipeline = Rejected(() => builder.Build(backend));
        context.Ct.ThrowIfCancellationRequested();

        var options = new GenerationOptions
        {
            Prompt = prompt ?? "",
            NegativePrompt = parse.GetValue(o.NegativePrompt),
            Frames = frames,
            Height = height,
            Width = width,
            Steps = stepCount,
            Guidance = scale,
            Seed = seed,
            Scheduler = scheduler,
            Latents = latents,
            PromptEmbeds = promptEmbeds,
            NegativePromptEmbeds = negativeEmbeds,
            OutputType = latentOut ? OutputType.Latent : OutputType.Video,
            Image = sources.Role is null ? source : null,
            Video = sources.Role is null ? null : source,
            VideoRole = sources.Role ?? VideoRole.Edit,
            Strength = sources.Strength,
            ExtendFrames = sources.ExtendFrames,
        };
        Rejected(() => pipeline.Validate(options));
        // Status lines start only once the model has loaded and taken the request, so a refusal stays a single error line.
        context.Err.WriteLine($"sora: loaded {modelName} on {backend.Device.Name} ({backend.Device.Kind}) in {clock.Elapsed.TotalSeconds:0.0} s");
        foreach (var lora in pipeline.Transformer.Loras) context.Err.WriteLine($"sora: {lora}");
        context.Err.WriteLine($"sora: {sources.Describe()}{frames} frames {width}x{height}, {stepCount} {scheduler} steps, guidance {scale.ToString(CultureInfo.InvariantCulture)}");
        WarnOfUnknownWords(context, builder.Model, prompt);
        var result = Rejected(() => pipeline.Generate(options, ProgressBar.For(context.Err), context.Ct));
        using var final = result.Latents ?? throw new InvalidOperationException("the pipeline returned no latents");
        context.Ct.ThrowIfCancellationRequested();
        string seedNote = result.Seed is { } s ? $", seed {s}" : "";

        if (latentOut)
        {
            // Stored [1, C, T, h, w] like diffusers' latents, so the file can go back in as --latents.
            var batched = final.Rank == 4 ? final.Reshape([1, .. final.Shape]) : final;
            SafetensorsWriter.Write(target.Path, [new("latents", batched)], Metadata(prompt, result.Seed, stepCount, scheduler, scale));
            context.Out.WriteLine($"wrote {target.Path}: latents {batched.ShapeString} in {clock.Elapsed.TotalSeconds:0.0} s{seedNote}");
        }
        else
        {
            var video = result.Video ?? throw new InvalidOperationException("the pipeline returned no video");
            if (parse.GetValue(o.Join)) video = ClipFrames.JoinExtension(source!, video, sources.ExtendFrames);
            target.WriteVideo(video, frameRate, context.Ct);
            context.Out.WriteLine($"wrote {target.Describe()}: {video.Frames} frames {video.Width}x{video.Height} at {frameRate} fps in {clock.Elapsed.TotalSeconds:0.0} s{seedNote}");
        }
        return 0;
    }

    /// <summary>
    /// Frames and size from the options, or from --latents' shape where not given (both must agree); else a source
    /// clip's frame count (editing) and an image's or clip's aspect ratio; else the model's defaults. The scale
    /// factors and the size multiple are the model's.
    /// </summary>
    private static (int Frames, int Height, int Width) Size(ParseResult parse, Options o, Tensor? latents, GenerationDefaults defaults,
        ModelGeometry geometry, VideoFrames? source, Sources sources)
    {
        int? frames = Value(parse, o.Frames), height = Value(parse, o.Height), width = Value(parse, o.Width);
        int temporal = geometry.TemporalFactor, multiple = geometry.SizeMultiple;
        if (latents is not null)
        {
            if (latents.Rank is not (4 or 5) || (latents.Rank == 5 && latents.Dim(0) != 1))
                throw new UsageException($"--latents: expected shape [C, T, h, w] or [1, C, T, h, w], got {latents.ShapeString}");
            int t = latents.Dim(-3), h = latents.Dim(-2), w = latents.Dim(-1);
            (int F, int H, int W) fromLatents = (temporal * (t - 1) + 1, geometry.SpatialFactor * h, geometry.SpatialFactor * w);
            if ((frames ?? fromLatents.F) != fromLatents.F || (height ?? fromLatents.H) != fromLatents.H || (width ?? fromLatents.W) != fromLatents.W)
                throw new UsageException($"--latents {latents.ShapeString} make {fromLatents.F} frames of {fromLatents.W}x{fromLatents.H}, "
                    + $"which disagrees with --frames/--height/--width");
            (frames, height, width) = fromLatents;
        }
        if (source is not null)
        {
            if (frames is null && sources.Role == VideoRole.Edit) frames = (source.Frames - 1) / temporal * temporal + 1;
            if (height is null && width is null)
            {
                long area = (long)defaults.Width * defaults.Height;
                (width, height) = FrameFit.BestOutputSize(source.Width, source.Height, area, multiple, multiple);
            }
        }
        int f = frames ?? defaults.Frames, hh = height ?? defaults.Height, ww = width ?? defaults.Width;
        if (f < 1 || (f - 1) % temporal != 0) throw new UsageException($"--frames must be {temporal}k+1 (1, {1 + temporal}, {1 + 2 * temporal}, ...), got {f}");
        if (hh < multiple || hh % multiple != 0) throw new UsageException($"--height must be a positive multiple of {multiple} for this model, got {hh}");
        if (ww < multiple || ww % multiple != 0) throw new UsageException($"--width must be a positive multiple of {multiple} for this model, got {ww}");
        return (f, hh, ww);
    }

    /// <summary>Runs a pipeline call; an option it rejects (a request too large for the device, say) is a usage error naming the flag.</summary>
    private static T Rejected<T>(Func<T> call)
    {
        try
        {
            return call();
        }
        catch (ArgumentException e) when (e.ParamName is { } name && Flags.TryGetValue(name, out string? flag))
        {
            throw new UsageException($"{flag}: {e.Message.Replace($" (Parameter '{name}')", "")}");
        }
    }

    /// <summary>The flag of each GenerationOptions property the pipeline may name.</summary>
    private static readonly Dictionary<string, string> Flags = new()
    {
        ["Frames"] = "--frames", ["Height"] = "--height", ["Width"] = "--width", ["Steps"] = "--steps", ["Guidance"] = "--guidance",
        ["Latents"] = "--latents", ["PromptEmbeds"] = "--prompt-embeds", ["NegativePromptEmbeds"] = "--negative-prompt-embeds",
        ["Image"] = "--image", ["Video"] = "--video/--extend", ["Strength"] = "--strength", ["ExtendFrames"] = "--extend-frames",
        ["Transformer"] = "--transformer", ["Vae"] = "--vae", ["FlowShift"] = "--flow-shift",
    };

    /// <summary>
    /// The model from --model and the part options: a part not given comes from --model, or, when --model is not
    /// given either, from the shipped model folder; with both --transformer and --vae given no folder is needed
    /// (the text side then comes only from --text-encoder and --tokenizer).
    /// </summary>
    private static WanPipelineBuilder Builder(ParseResult parse, Options o)
    {
        var p = o.Parts;
        string? File(Option<string?> option, string flag)
        {
            string? path = parse.GetValue(option);
            if (path is not null && !System.IO.File.Exists(path) && !Directory.Exists(path)) throw new UsageException($"{flag} {path}: no such file or folder");
            return path;
        }
        string? transformer = File(p.Transformer, "--transformer"), vae = File(p.Vae, "--vae");
        string? model = parse.GetValue(o.Model) is not null || transformer is null || vae is null ? ModelLocator.Resolve(parse.GetValue(o.Model)) : null;
        var loras = (parse.GetValue(p.Lora) ?? []).Select(text =>
        {
            LoraSpec spec;
            try { spec = LoraSpec.Parse(text); }
            catch (ArgumentException e) { throw new UsageException($"--lora: {e.Message.Replace(" (Parameter 'text')", "")}"); }
            if (!System.IO.File.Exists(spec.Path)) throw new UsageException($"--lora {spec.Path}: file not found");
            return spec;
        }).ToList();
        double? shift = Value(parse, p.FlowShift);
        if (shift is { } s && (!double.IsFinite(s) || s <= 0)) throw new UsageException($"--flow-shift must be a positive number, got {s.ToString(CultureInfo.InvariantCulture)}");
        return new WanPipelineBuilder
        {
            Model = model,
            Transformer = transformer,
            TransformerConfig = File(p.TransformerConfig, "--transformer-config"),
            Vae = vae,
            TextEncoder = File(p.TextEncoder, "--text-encoder"),
            Tokenizer = File(p.Tokenizer, "--tokenizer"),
            Loras = loras,
            FlowShift = shift,
        };
    }

    /// <summary>--image, --video or --extend with their settings, checked before the model is read.</summary>
    private sealed record Sources(string? Path, string Flag, VideoRole? Role, double Strength, int ExtendFrames)
    {
        public static Sources Check(ParseResult parse, Options o)
        {
            string? image = parse.GetValue(o.Image), video = parse.GetValue(o.Video), extend = parse.GetValue(o.Extend);
            int given = (image is null ? 0 : 1) + (video is null ? 0 : 1) + (extend is null ? 0 : 1);
            if (given > 1) throw new UsageException("--image, --video and --extend: give at most one of them");
            double? strength = Value(parse, o.Strength);
            if (strength is not null && video is null) throw new UsageException("--strength: only with --video");
            if (strength is { } s && !(s > 0 && s <= 1)) throw new UsageException($"--strength must be in (0, 1], got {s.ToString(CultureInfo.InvariantCulture)}");
            int? extendFrames = Value(parse, o.ExtendFrames);
            if (extendFrames is not null && extend is null) throw new UsageException("--extend-frames: only with --extend");
            var defaults = new GenerationOptions();
            if (image is not null) return new Sources(image, "--image", null, defaults.Strength, defaults.ExtendFrames);
            if (video is not null) return new Sources(video, "--video", VideoRole.Edit, strength ?? defaults.Strength, defaults.ExtendFrames);
            if (extend is not null) return new Sources(extend, "--extend", VideoRole.Extend, defaults.Strength, extendFrames ?? defaults.ExtendFrames);
            return new Sources(null, "", null, defaults.Strength, defaults.ExtendFrames);
        }

        public void CheckExtendFrames(ModelGeometry geometry)
        {
            int temporal = geometry.TemporalFactor;
            if (Role == VideoRole.Extend && (ExtendFrames < 1 || (ExtendFrames - 1) % temporal != 0))
                throw new UsageException($"--extend-frames must be {temporal}k+1 (1, {1 + temporal}, {1 + 2 * temporal}, ...), got {ExtendFrames}");
        }

        /// <summary>The image or clip, decoded (null without one); a file that does not decode is a usage error naming the flag.</summary>
        public VideoFrames? Read()
        {
            if (Path is null) return null;
            try
            {
                return Role is null ? VideoInput.ReadImage(Path) : VideoInput.ReadClip(Path);
            }
            catch (VideoInputException e)
            {
                throw new UsageException($"{Flag} {e.Message}");
            }
        }

        public void CheckLength(VideoFrames? clip, int frames)
        {
            if (clip is null || Role is null) return;
            if (Role == VideoRole.Extend && clip.Frames < ExtendFrames)
                throw new UsageException($"--extend {Path}: the clip has {clip.Frames} frames, fewer than --extend-frames {ExtendFrames}");
            if (Role == VideoRole.Extend && ExtendFrames >= frames)
                throw new UsageException($"--extend-frames {ExtendFrames} must be fewer than the {frames} frames of the new clip (--frames)");
            if (Role == VideoRole.Edit && clip.Frames < frames)
                throw new UsageException($"--video {Path}: the clip has {clip.Frames} frames, fewer than the {frames} asked for (--frames)");
        }

        public string Describe() => Role switch
        {
            null when Path is null => "",
            null => $"image {Path}, ",
            VideoRole.Edit => $"editing {Path} at strength {Strength.ToString(CultureInfo.InvariantCulture)}, ",
            _ => $"extending {Path} from its last {ExtendFrames} frames, ",
        };
    }

    /// <summary>Whether the option was typed on the command line (not just its default).</summary>
    private static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    private static T? Value<T>(ParseResult parse, Option<T> option) where T : struct
        => Given(parse, option) ? parse.GetValue(option) : null;

    private static Tensor? Load(string? path, string name, string option)
        => path is null ? null : TensorFiles.ReadSingle(path, name, option);

    /// <summary>A warning line (not an error) for prompt words the model's captions never had, when the model lists them.</summary>
    private static void WarnOfUnknownWords(CliContext context, string? modelDir, string? prompt)
    {
        if (modelDir is null || prompt is null || PromptVocabulary.Load(modelDir) is not { } vocabulary) return;
        var unknown = vocabulary.Unknown(prompt);
        if (unknown.Count == 0) return;
        string words = string.Join(", ", unknown.Select(w => $"'{w}'"));
        context.Err.WriteLine($"sora: warning: the model was never trained on {words}; it knows only: {string.Join(" ", vocabulary.Words.Order(StringComparer.Ordinal))}");
    }

    private static Dictionary<string, string> Metadata(string? prompt, long? seed, int steps, string scheduler, double guidance) => new()
    {
        ["prompt"] = prompt ?? "",
        ["seed"] = seed?.ToString(CultureInfo.InvariantCulture) ?? "given latents",
        ["steps"] = steps.ToString(CultureInfo.InvariantCulture),
        ["scheduler"] = scheduler,
        ["guidance"] = guidance.ToString(CultureInfo.InvariantCulture),
    };
}
