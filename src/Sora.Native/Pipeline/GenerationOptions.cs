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

/// <summary>
/// One text-to-video request. Defaults are diffusers' WanPipeline defaults (480×832, 81 frames, 50 steps, guidance 5).
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>The prompt text; ignored when <see cref="PromptEmbeds"/> is given.</summary>
    public string Prompt { get; init; } = "";
    /// <summary>Null: Wan's default (Chinese) negative prompt, <see cref="PromptText.DefaultNegativePrompt"/>. Used only with guidance &gt; 1.</summary>
    public string? NegativePrompt { get; init; }
    /// <summary>4k+1 frames (the VAE turns latent frame t into frames 4t−3..4t).</summary>
    public int Frames { get; init; } = 81;
    /// <summary>A multiple of 16 (VAE scale 8 × patch 2).</summary>
    public int Height { get; init; } = 480;
    /// <summary>A multiple of 16 (VAE scale 8 × patch 2).</summary>
    public int Width { get; init; } = 832;
    public int Steps { get; init; } = 50;
    /// <summary>Classifier-free guidance scale: v = v_neg + g·(v_pos − v_neg); at most 1 runs the prompt alone.</summary>
    public double Guidance { get; init; } = 5.0;
    /// <summary>Seed of the initial noise (<see cref="GaussianNoise"/>); null picks one (reported in the result). Ignored with <see cref="Latents"/>.</summary>
    public long? Seed { get; init; }
    /// <summary>"unipc" or "euler"; null: the model's scheduler_config.json class. Shift and solver settings come from that file.</summary>
    public string? Scheduler { get; init; } = "unipc";
    /// <summary>Initial noise instead of a seed: [C, T, h, w] or [1, C, T, h, w], h = Height/8, w = Width/8, T = (Frames−1)/4 + 1.</summary>
    public Tensor? Latents { get; init; }
    /// <summary>Prompt embeddings instead of text: [N, text_dim] or [1, N, text_dim] (the pipeline's form: 512 rows, real tokens then zeros).</summary>
    public Tensor? PromptEmbeds { get; init; }
    /// <summary>Negative prompt embeddings instead of text, shaped like <see cref="PromptEmbeds"/>.</summary>
    public Tensor? NegativePromptEmbeds { get; init; }
    public OutputType OutputType { get; init; } = OutputType.Video;
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
