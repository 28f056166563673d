using Sora.Runtime;

namespace Sora.Native.Schedulers;

/// <summary>
/// diffusers' FlowMatchEulerDiscreteScheduler (static shift, no dynamic shifting): timesteps linearly spaced
/// between the shifted training σ range, shifted once more, and x ← x + (σ_{i+1} − σ_i)·v.
/// </summary>
public sealed class FlowMatchEulerScheduler : IFlowScheduler
{
    private readonly IBackend _backend;
    private float[] _timesteps = [];
    private float[] _sigmas = [];
    private int _stepIndex;

    public FlowMatchEulerScheduler(IBackend backend, double shift = 3.0, int numTrainTimesteps = 1000)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (!(shift > 0) || double.IsInfinity(shift)) throw new ArgumentOutOfRangeException(nameof(shift), shift, "shift must be positive");
        ArgumentOutOfRangeException.ThrowIfLessThan(numTrainTimesteps, 2);
        _backend = backend;
        Shift = shift;
        NumTrainTimesteps = numTrainTimesteps;
    }

    public double Shift { get; }
    public int NumTrainTimesteps { get; }
    public IReadOnlyList<float> Timesteps => _timesteps;
    public IReadOnlyList<float> Sigmas => _sigmas;

    public int FirstStep { get; private set; }

    public void SetTimesteps(int steps) => SetTimesteps(steps, 0);

    public void SetTimesteps(int steps, int firstStep)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(firstStep);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(firstStep, steps);
        int t = NumTrainTimesteps;
        // The training table's ends (computed in f32 as in diffusers' constructor): σ_max = shift(1) = 1, σ_min = shift(1/T).
        float sigmaMax = ShiftF32(1f), sigmaMin = ShiftF32(1f / t);
        _sigmas = new float[steps + 1];
        _timesteps = new float[steps];
        // numpy.linspace(σ_max·T, σ_min·T, steps) in float64, back to σ, shifted again (the low end is shifted twice).
        double start = (double)sigmaMax * t, end = (double)sigmaMin * t;
        double delta = steps == 1 ? 0 : (end - start) / (steps - 1);
        for (int i = 0; i < steps; i++)
        {
            double timestep = i == steps - 1 && steps > 1 ? end : i * delta + start;
            double sigma = timestep / t;
            _sigmas[i] = (float)(Shift * sigma / (1 + (Shift - 1) * sigma));
            _timesteps[i] = _sigmas[i] * t;
        }
        _sigmas[steps] = 0f;
        _stepIndex = FirstStep = firstStep;
    }

    public void Step(Tensor velocity, Tensor sample)
    {
        if (_stepIndex >= _timesteps.Length)
            throw new InvalidOperationException($"Step called {_stepIndex + 1} times for a schedule of {_timesteps.Length} steps (call SetTimesteps first)");
        _backend.EulerStep(sample, velocity, _sigmas[_stepIndex], _sigmas[_stepIndex + 1]);
        _stepIndex++;
    }

    private float ShiftF32(float sigma) => (float)Shift * sigma / (1f + ((float)Shift - 1f) * sigma);

    public void Dispose() { }
}
