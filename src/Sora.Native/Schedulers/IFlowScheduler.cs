using Sora.Runtime;

namespace Sora.Native.Schedulers;

/// <summary>
/// A flow-matching sampler: the model predicts the velocity v with x_σ = (1−σ)·x₀ + σ·noise; each step moves the
/// sample from σ_i to σ_{i+1}. Call <see cref="SetTimesteps(int)"/>, then <see cref="Step"/> once per timestep in order.
/// </summary>
public interface IFlowScheduler : IDisposable
{
    /// <summary>Resets the state and builds the schedule for <paramref name="steps"/> steps.</summary>
    void SetTimesteps(int steps);

    /// <summary>
    /// Builds the schedule for <paramref name="steps"/> steps and starts it at step <paramref name="firstStep"/>
    /// (video-to-video keeps only the schedule's tail): the first <see cref="Step"/> moves from σ[firstStep], as
    /// diffusers' schedulers do after <c>set_begin_index</c>, with no history from the skipped steps.
    /// </summary>
    void SetTimesteps(int steps, int firstStep);

    /// <summary>The step the schedule starts at (0 unless <see cref="SetTimesteps(int, int)"/> skipped some).</summary>
    int FirstStep { get; }

    /// <summary>The timesteps passed to the model (0..1000 scale), one per step.</summary>
    IReadOnlyList<float> Timesteps { get; }

    /// <summary>σ per step plus the final σ (steps + 1 values).</summary>
    IReadOnlyList<float> Sigmas { get; }

    /// <summary>Advances <paramref name="sample"/> in place by one step given the model's velocity for it.</summary>
    void Step(Tensor velocity, Tensor sample);
}
