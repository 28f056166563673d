using Sora.Native.Video;
using Sora.Runtime;

namespace Sora.Native.Pipeline;

/// <summary>What <see cref="WanPipeline.Generate"/> returns.</summary>
public enum OutputType
{
    /// <summary>Decoded frames (and the final latents).</summary>
    Video,
    /// <summary>Only the final latents; the VAE is not run.</summary>
    Latent,
}

/// <summary>What a source clip (<see cref="GenerationOptions.Video"/>) is for.</summary>
public enum VideoRole
{
    /// <summary>Video to video (SDEdit): the clip is encoded, noised to the first timestep kept by
    /// <see cref="GenerationOptions.Strength"/>, and the rest of the schedule redraws it under the prompt.</summary>
    Edit,
    /// <summary>Extension: the clip's last <see cref="GenerationOptions.ExtendFrames"/> frames are the known start of the new clip.</summary>
    Extend,
}

/// <summary>
/// One request: text to video, or with <see cref="Image"/> image to video, or with <see cref="Video"/> editing or
/// extending a clip. Defaults are diffusers' WanPipeline defaults (480×832, 81 frames, 50 steps, guidance 5).
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>The prompt text; ignored when <see cref="PromptEmbeds"/> is given.</summary>
    public string Prompt { get; init; } = "";
    /// <summary>Null: Wan's default (Chinese) negative prompt, <see cref="PromptText.DefaultNegativePrompt"/>. Used only with guidance &gt; 1.</summary>
    public string? NegativePrompt { get; init; }
    /// <summary>4k+1 frames (the VAE turns latent frame t into frames 4t−3..4t).</summary>
    public int Frames { get; init; } = 81;
    /// <summary>A multiple of the model's size multiple (VAE scale × patch: 16 for Wan2.1, 32 for Wan2.2).</summary>
    public int Height { get; init; } = 480;
    /// <summary>A multiple of the model's size multiple (VAE scale × patch: 16 for Wan2.1, 32 for Wan2.2).</summary>
    public int Width { get; init; } = 832;
    public int Steps { get; init; } = 50;
    /// <summary>Classifier-free guidance scale: v = v_neg + g·(v_pos − v_neg); at most 1 runs the prompt alone.</summary>
    public double Guidance { get; init; } = 5.0;
    /// <summary>Seed of the initial noise (<see cref="GaussianNoise"/>); null picks one (reported in the result). Ignored with <see cref="Latents"/>.</summary>
    public long? Seed { get; init; }
    /// <summary>"unipc" or "euler"; null: the model's scheduler_config.json class. Shift and solver settings come from that file.</summary>
    public string? Scheduler { get; init; } = "unipc";
    /// <summary>
    /// The initial noise a seed would otherwise draw, in every mode: [C, T, h, w] or [1, C, T, h, w] with h = Height/s,
    /// w = Width/s (s the VAE's spatial factor, 8 for Wan2.1, 16 for Wan2.2) and T = (Frames−1)/4 + 1.
    /// </summary>
    public Tensor? Latents { get; init; }
    /// <summary>Prompt embeddings instead of text: [N, text_dim] or [1, N, text_dim] (the pipeline's form: 512 rows, real tokens then zeros).</summary>
    public Tensor? PromptEmbeds { get; init; }
    /// <summary>Negative prompt embeddings instead of text, shaped like <see cref="PromptEmbeds"/>.</summary>
    public Tensor? NegativePromptEmbeds { get; init; }
    public OutputType OutputType { get; init; } = OutputType.Video;
    /// <summary>
    /// Image to video: the clip's first frame (one frame, any size: resized preserving its aspect ratio and
    /// centre-cropped to Width×Height). It is encoded alone as latent frame 0, which the sampler keeps fixed.
    /// </summary>
    public VideoFrames? Image { get; init; }
    /// <summary>A source clip, edited or continued as <see cref="VideoRole"/> says (any size: fitted like <see cref="Image"/>).</summary>
    public VideoFrames? Video { get; init; }
    public VideoRole VideoRole { get; init; } = VideoRole.Edit;
    /// <summary>Extension: how many of the clip's last frames start the new clip, 4k+1 and fewer than <see cref="Frames"/>.</summary>
    public int ExtendFrames { get; init; } = 5;
    /// <summary>Editing: the share of the schedule run again, in (0, 1] (diffusers' default 0.8); 1 redraws from pure noise.</summary>
    public double Strength { get; init; } = 0.8;
    /// <summary>Called after every denoising step on the calling thread.</summary>
    public Action<StepInfo>? OnStep { get; init; }
}

/// <summary>Progress after <paramref name="Step"/> of <paramref name="TotalSteps"/> denoising steps (1-based).</summary>
public sealed record StepProgress(int Step, int TotalSteps, TimeSpan Elapsed);

/// <summary>A finished denoising step: its number (1-based), the timestep the model saw, and the σ reached.</summary>
public sealed record StepInfo(int Step, int TotalSteps, float Timestep, float Sigma, TimeSpan Elapsed);

/// <summary>The outcome of a generation. The caller owns (and disposes) <see cref="Latents"/>.</summary>
public sealed class GenerationResult
{
    /// <summary>Frames [F, H, W, 3] in [0, 1]; null for <see cref="OutputType.Latent"/>.</summary>
    public VideoFrames? Video { get; init; }
    /// <summary>The final latents, host [C, T, h, w] (normalised, as the transformer sees them).</summary>
    public Tensor? Latents { get; init; }
    /// <summary>The seed of the initial noise; null when the caller gave the latents.</summary>
    public long? Seed { get; init; }
}
