using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Sora.Kernels;
using Sora.Native.Pipeline;
using Sora.Runtime;
using Sora.Runtime.Safetensors;

namespace Sora.Cli;

/// <summary><c>sora generate "prompt"</c>: text to video with the Wan2.1 pipeline.</summary>
public static class GenerateCommand
{
    public static readonly string[] Schedulers = ["unipc", "euler"];
    public static readonly string[] OutputTypes = ["video", "latent"];

    /// <summary>Wan's VAE: 4 frames per latent frame after the first, 8 pixels per latent pixel.</summary>
    private const int TemporalScale = 4, SpatialScale = 8;

    private const string ModelDefault = "Default: the model's (its " + GenerationDefaults.FileName + "), else Wan2.1's";

    private sealed record Options(
        Argument<string?> Prompt, Option<string?> NegativePrompt, Option<string?> Model, Option<int> Frames, Option<int> Height,
        Option<int> Width, Option<int> Steps, Option<double> Guidance, Option<long> Seed, Option<string> Scheduler,
        Option<string> Device, Option<string?> Out, Option<int> Fps, Option<string?> Latents, Option<string?> PromptEmbeds,
        Option<string?> NegativePromptEmbeds, Option<string> OutputType);

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
            new Option<string>("--output-type") { Description = "video, or latent to save the final latents [1, C, T, h, w] (no VAE decode).", DefaultValueFactory = _ => "video", HelpName = "video|latent" });

        var command = new Command("generate", "Generate a video from a text prompt.")
        {
            o.Prompt, o.NegativePrompt, o.Model, o.Frames, o.Height, o.Width, o.Steps, o.Guidance, o.Seed, o.Scheduler,
            o.Device, o.Out, o.Fps, o.Latents, o.PromptEmbeds, o.NegativePromptEmbeds, o.OutputType,
        };
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

        var target = OutputTarget.Parse(parse.GetValue(o.Out) ?? (latentOut ? OutputTarget.DefaultLatents : OutputTarget.DefaultVideo), latentOut);
        target.EnsureWritable();

        string modelDir = ModelLocator.Resolve(parse.GetValue(o.Model));
        var defaults = GenerationDefaults.Load(modelDir);
        using var latents = Load(parse.GetValue(o.Latents), "latents", "--latents");
        var (frames, height, width) = Size(parse, o, latents, defaults);
        using var promptEmbeds = Load(promptEmbedsPath, "prompt_embeds", "--prompt-embeds");
        using var negativeEmbeds = Load(parse.GetValue(o.NegativePromptEmbeds), "negative_prompt_embeds", "--negative-prompt-embeds");
        int stepCount = steps ?? defaults.Steps, frameRate = fps ?? defaults.Fps;
        double scale = guidance ?? defaults.Guidance;
        long? seed = Given(parse, o.Seed) ? parse.GetValue(o.Seed) : null;

        var clock = Stopwatch.StartNew();
        using var backend = Commands.CreateBackend(device);
        using var pipeline = WanPipeline.Load(modelDir, backend);
        context.Ct.ThrowIfCancellationRequested();
        // Status lines start only once the model has loaded, so a load failure stays a single error line.
        context.Err.WriteLine($"sora: loaded {modelDir} on {backend.Device.Name} ({backend.Device.Kind}) in {clock.Elapsed.TotalSeconds:0.0} s");
        context.Err.WriteLine($"sora: {frames} frames {width}x{height}, {stepCount} {scheduler} steps, guidance {scale.ToString(CultureInfo.InvariantCulture)}");

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
        };
        var result = pipeline.Generate(options, ProgressBar.For(context.Err), context.Ct);
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
            target.WriteVideo(video, frameRate, context.Ct);
            context.Out.WriteLine($"wrote {target.Describe()}: {video.Frames} frames {video.Width}x{video.Height} at {frameRate} fps in {clock.Elapsed.TotalSeconds:0.0} s{seedNote}");
        }
        return 0;
    }

    /// <summary>
    /// Frames and size from the options, or from --latents' shape where not given (both must agree), else the model's defaults.
    /// </summary>
    private static (int Frames, int Height, int Width) Size(ParseResult parse, Options o, Tensor? latents, GenerationDefaults defaults)
    {
        int? frames = Value(parse, o.Frames), height = Value(parse, o.Height), width = Value(parse, o.Width);
        if (latents is not null)
        {
            if (latents.Rank is not (4 or 5) || (latents.Rank == 5 && latents.Dim(0) != 1))
                throw new UsageException($"--latents: expected shape [C, T, h, w] or [1, C, T, h, w], got {latents.ShapeString}");
            int t = latents.Dim(-3), h = latents.Dim(-2), w = latents.Dim(-1);
            (int F, int H, int W) fromLatents = (TemporalScale * (t - 1) + 1, SpatialScale * h, SpatialScale * w);
            if ((frames ?? fromLatents.F) != fromLatents.F || (height ?? fromLatents.H) != fromLatents.H || (width ?? fromLatents.W) != fromLatents.W)
                throw new UsageException($"--latents {latents.ShapeString} make {fromLatents.F} frames of {fromLatents.W}x{fromLatents.H}, "
                    + $"which disagrees with --frames/--height/--width");
            (frames, height, width) = fromLatents;
        }
        int f = frames ?? defaults.Frames, hh = height ?? defaults.Height, ww = width ?? defaults.Width;
        if (f < 1 || (f - 1) % TemporalScale != 0) throw new UsageException($"--frames must be 4k+1 (1, 5, 9, ..., 81), got {f}");
        if (hh < 16 || hh % 16 != 0) throw new UsageException($"--height must be a positive multiple of 16, got {hh}");
        if (ww < 16 || ww % 16 != 0) throw new UsageException($"--width must be a positive multiple of 16, got {ww}");
        return (f, hh, ww);
    }

    /// <summary>Whether the option was typed on the command line (not just its default).</summary>
    private static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    private static T? Value<T>(ParseResult parse, Option<T> option) where T : struct
        => Given(parse, option) ? parse.GetValue(option) : null;

    private static Tensor? Load(string? path, string name, string option)
        => path is null ? null : TensorFiles.ReadSingle(path, name, option);

    private static Dictionary<string, string> Metadata(string? prompt, long? seed, int steps, string scheduler, double guidance) => new()
    {
        ["prompt"] = prompt ?? "",
        ["seed"] = seed?.ToString(CultureInfo.InvariantCulture) ?? "given latents",
        ["steps"] = steps.ToString(CultureInfo.InvariantCulture),
        ["scheduler"] = scheduler,
        ["guidance"] = guidance.ToString(CultureInfo.InvariantCulture),
    };
}
