using Sora.Runtime;

namespace Sora.Native.Schedulers;

/// <summary>Settings of diffusers' UniPCMultistepScheduler that matter with flow sigmas (the Wan2.1 configuration).</summary>
public sealed record UniPcOptions
{
    /// <summary>σ ← s·σ / (1 + (s−1)·σ); 3.0 for Wan2.1 at 480p.</summary>
    public double FlowShift { get; init; } = 3.0;
    public int NumTrainTimesteps { get; init; } = 1000;
    /// <summary>1 or 2.</summary>
    public int SolverOrder { get; init; } = 2;
    /// <summary>"bh2" (B(h) = expm1(−h)) or "bh1" (B(h) = −h).</summary>
    public string SolverType { get; init; } = "bh2";
    /// <summary>Drop to first order on the last steps (always for the final one).</summary>
    public bool LowerOrderFinal { get; init; } = true;
    /// <summary>Step indices whose corrector is skipped (diffusers' disable_corrector).</summary>
    public int[] DisableCorrector { get; init; } = [];
}

/// <summary>
/// diffusers' UniPCMultistepScheduler as Wan2.1 publishes it: flow_prediction with use_flow_sigmas, predict_x0,
/// final σ 0 — a multistep predictor (UniP) with a corrector (UniC) applied to the sample at the start of each
/// step from the previous step's prediction. Model outputs are converted to x₀ = x − σ·v; with α = 1 − σ and
/// λ(σ) = ln(1−σ) − ln σ. The scalar coefficients are computed on the host in float64 (from the f32 σ table);
/// each update is one <see cref="IBackend.LinearCombination"/> of whole tensors.
/// </summary>
public sealed class UniPcScheduler : IFlowScheduler
{
    private readonly IBackend _backend;
    private float[] _timesteps = [];
    private float[] _sigmas = [];
    // The last SolverOrder converted outputs x₀, oldest first; the newest is at the end.
    private readonly List<Tensor> _history = new();
    private Tensor? _lastSample;
    private int _stepIndex, _lowerOrderNums, _lastOrder;

    public UniPcScheduler(IBackend backend, UniPcOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        options ??= new UniPcOptions();
        if (!(options.FlowShift > 0) || double.IsInfinity(options.FlowShift))
            throw new ArgumentOutOfRangeException(nameof(options), options.FlowShift, "flow_shift must be positive");
        if (options.SolverOrder is not (1 or 2))
            throw new ArgumentOutOfRangeException(nameof(options), options.SolverOrder, "solver_order must be 1 or 2");
        if (options.SolverType is not ("bh1" or "bh2"))
            throw new ArgumentOutOfRangeException(nameof(options), options.SolverType, "solver_type must be bh1 or bh2");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.NumTrainTimesteps, 2);
        _backend = backend;
        Options = options;
    }

    public UniPcOptions Options { get; }
    public IReadOnlyList<float> Timesteps => _timesteps;
    public IReadOnlyList<float> Sigmas => _sigmas;

    public int FirstStep { get; private set; }

    public void SetTimesteps(int steps) => SetTimesteps(steps, 0);

    public void SetTimesteps(int steps, int firstStep)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(firstStep);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(firstStep, steps);
        double s = Options.FlowShift;
        int t = Options.NumTrainTimesteps;
        _sigmas = new float[steps + 1];
        _timesteps = new float[steps];
        for (int k = 0; k < steps; k++)
        {
            // numpy.linspace(1, 1/T, steps + 1) without its last value, in float64.
            double sigma = 1.0 + k * ((1.0 / t - 1.0) / steps);
            sigma = s * sigma / (1 + (s - 1) * sigma);
            // diffusers lowers a first σ of 1 so that ln(σ) and ln(1−σ) stay finite in the first updates.
            if (k == 0 && Math.Abs(sigma - 1) < 1e-6) sigma -= 1e-6;
            _sigmas[k] = (float)sigma;
            _timesteps[k] = (long)(sigma * t); // int64 cast: truncation toward zero
        }
        _sigmas[steps] = 0f; // final_sigmas_type "zero"
        Reset();
        // The first kept step has no earlier outputs: first order, no corrector (as diffusers after set_begin_index).
        _stepIndex = FirstStep = firstStep;
    }

    public void Step(Tensor velocity, Tensor sample)
    {
        ArgumentNullException.ThrowIfNull(velocity);
        ArgumentNullException.ThrowIfNull(sample);
        int i = _stepIndex, steps = _timesteps.Length;
        if (i >= steps)
            throw new InvalidOperationException($"Step called {i + 1} times for a schedule of {steps} steps (call SetTimesteps first)");
        if (velocity.ElementCount != sample.ElementCount)
            throw new ArgumentException($"velocity {velocity.ShapeString} and sample {sample.ShapeString} differ in size", nameof(velocity));

        // x₀ prediction of this step.
        var x0 = _backend.Allocate(DType.F32, sample.Shape);
        _backend.LinearCombination([1f, -_sigmas[i]], [sample, velocity], x0);

        // UniC: correct the sample the previous predictor produced, using this step's x₀.
        if (i > 0 && _lastSample is not null && !Options.DisableCorrector.Contains(i - 1))
            Correct(x0, sample);

        _history.Add(x0);
        if (_history.Count > Options.SolverOrder)
        {
            _history[0].Dispose();
            _history.RemoveAt(0);
        }

        int order = Options.LowerOrderFinal ? Math.Min(Options.SolverOrder, steps - i) : Options.SolverOrder;
        order = Math.Min(order, _lowerOrderNums + 1);
        // A step to σ = 0 must be first order: λ(0) = +∞ makes r = 0 in the second-order term (diffusers gets NaN there
        // only when lower_order_final is off).
        if (_sigmas[i + 1] == 0f) order = 1;
        _lastOrder = order;

        _lastSample ??= _backend.Allocate(DType.F32, sample.Shape);
        _backend.Copy(sample, _lastSample);

        Predict(sample, order);

        _lowerOrderNums = Math.Min(_lowerOrderNums + 1, Options.SolverOrder);
        _stepIndex++;
    }

    /// <summary>
    /// UniP of <paramref name="order"/> from σ_i to σ_{i+1} in place: x ← (σ_t/σ_s)·x − α_t·φ·m₀ − α_t·B·Σρ·D with
    /// φ = expm1(−h), D = (m₋₁ − m₀)/r and ρ = ½ for order 2. At σ_{i+1} = 0 this returns exactly m₀ (λ = +∞ gives φ = B = −1).
    /// </summary>
    private void Predict(Tensor sample, int order)
    {
        int i = _stepIndex;
        double sigmaS = _sigmas[i], sigmaT = _sigmas[i + 1];
        double h = Lambda(sigmaT) - Lambda(sigmaS), phi = Math.Exp(-h) - 1, b = B(h);
        double alphaT = 1 - sigmaT;
        var m0 = _history[^1];
        if (order == 1)
        {
            _backend.LinearCombination([(float)(sigmaT / sigmaS), (float)(-alphaT * phi)], [sample, m0], sample);
            return;
        }
        double r = (Lambda(_sigmas[i - 1]) - Lambda(sigmaS)) / h;
        double c = -alphaT * b * 0.5 / r; // coefficient of D·r = (m₋₁ − m₀)
        _backend.LinearCombination(
            [(float)(sigmaT / sigmaS), (float)(-alphaT * phi - c), (float)c],
            [sample, m0, _history[^2]], sample);
    }

    /// <summary>
    /// UniC of the previous step's order from σ_{i−1} to σ_i, in place on <paramref name="sample"/>:
    /// x ← (σ_t/σ_s)·x_last − α_t·φ·m₀ − α_t·B·(ρ₀·D + ρ_last·(x₀ − m₀)), with ρ solving the order conditions.
    /// </summary>
    private void Correct(Tensor x0, Tensor sample)
    {
        int i = _stepIndex;
        double sigmaS = _sigmas[i - 1], sigmaT = _sigmas[i];
        double h = Lambda(sigmaT) - Lambda(sigmaS), hh = -h, phi = Math.Exp(hh) - 1, b = B(h);
        double alphaT = 1 - sigmaT;
        var m0 = _history[^1];
        double coefLast = sigmaT / sigmaS;
        if (_lastOrder == 1)
        {
            double rho = 0.5;
            _backend.LinearCombination(
                [(float)coefLast, (float)(-alphaT * phi + alphaT * b * rho), (float)(-alphaT * b * rho)],
                [_lastSample!, m0, x0], sample);
            return;
        }
        // Order 2: solve [[1, 1], [r, 1]]·ρ = [b₁, b₂] with b₁ = (φ/hh − 1)/B, b₂ = 2·((φ/hh − 1)/hh − ½)/B.
        double r = (Lambda(_sigmas[i - 2]) - Lambda(sigmaS)) / h;
        double k1 = phi / hh - 1, b1 = k1 / b, b2 = 2 * (k1 / hh - 0.5) / b;
        double rho0 = (b1 - b2) / (1 - r), rhoLast = b1 - rho0;
        double cD = -alphaT * b * rho0 / r; // coefficient of (m₋₁ − m₀)
        double cX = -alphaT * b * rhoLast;  // coefficient of (x₀ − m₀)
        _backend.LinearCombination(
            [(float)coefLast, (float)(-alphaT * phi - cD - cX), (float)cD, (float)cX],
            [_lastSample!, m0, _history[^2], x0], sample);
    }

    /// <summary>λ(σ) = ln α − ln σ with α = 1 − σ for flow sigmas; +∞ at σ = 0.</summary>
    private static double Lambda(double sigma) => Math.Log(1 - sigma) - Math.Log(sigma);

    /// <summary>B(h): expm1(−h) for bh2, −h for bh1.</summary>
    private double B(double h) => Options.SolverType == "bh2" ? Math.Exp(-h) - 1 : -h;

    private void Reset()
    {
        foreach (var t in _history) t.Dispose();
        _history.Clear();
        _lastSample?.Dispose();
        _lastSample = null;
        _stepIndex = 0;
        _lowerOrderNums = 0;
        _lastOrder = 0;
    }

    public void Dispose() => Reset();
}
