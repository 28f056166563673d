using Sora.Native.Loading;
using Sora.Runtime;

namespace Sora.Native.Schedulers;

/// <summary>Builds a scheduler from a diffusers scheduler_config.json, optionally overriding the solver.</summary>
public static class FlowSchedulers
{
    public const string UniPcClass = "UniPCMultistepScheduler";
    public const string EulerClass = "FlowMatchEulerDiscreteScheduler";

    /// <summary>The solver names accepted by <see cref="Create"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["unipc", "euler"];

    /// <summary>
    /// <paramref name="name"/> "unipc" or "euler" picks the solver (null: the config's <c>_class_name</c>); the shift
    /// and solver settings come from the config (UniPC's flow_shift and the Euler scheduler's shift stand for each other).
    /// Settings this engine does not implement are a <see cref="ModelLoadException"/> naming the key.
    /// <paramref name="shift"/>, when given, replaces the config's shift.
    /// </summary>
    public static IFlowScheduler Create(string? name, string configPath, IBackend backend, double? shift = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        var json = ConfigJson.Load(configPath, "scheduler config");
        string className = json.RequiredString("_class_name");
        if (className is not (UniPcClass or EulerClass))
            throw json.Error("_class_name", $"'{className}' is not supported ({UniPcClass} and {EulerClass} are)");
        string solver = name?.ToLowerInvariant() ?? (className == UniPcClass ? "unipc" : "euler");
        if (!Names.Contains(solver))
            throw new ArgumentException($"unknown scheduler '{name}' (expected {string.Join(" or ", Names)})", nameof(name));

        RequireFalse(json, "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_dynamic_shifting", "thresholding",
            "invert_sigmas", "stochastic_sampling");
        if (!json.IsNull("shift_terminal")) throw json.Error("shift_terminal", "is not supported (must be null)");
        shift ??= className == UniPcClass ? json.Double("flow_shift", 1.0) : json.Double("shift", 1.0);
        int trainSteps = json.Int("num_train_timesteps", 1000);

        if (className == UniPcClass) ValidateUniPc(json);
        if (solver == "euler") return new FlowMatchEulerScheduler(backend, shift.Value, trainSteps);
        return new UniPcScheduler(backend, new UniPcOptions
        {
            FlowShift = shift.Value,
            NumTrainTimesteps = trainSteps,
            SolverOrder = className == UniPcClass ? json.Int("solver_order", 2) : 2,
            SolverType = className == UniPcClass ? json.String("solver_type") ?? "bh2" : "bh2",
            LowerOrderFinal = className != UniPcClass || json.Bool("lower_order_final", true),
            DisableCorrector = className == UniPcClass ? json.IntArray("disable_corrector") ?? [] : [],
        });
    }

    /// <summary>Only the flow-matching configuration of UniPC (Wan's) is implemented.</summary>
    private static void ValidateUniPc(ConfigJson json)
    {
        void Expect(string key, string? actual, string expected)
        {
            if (actual != expected) throw json.Error(key, $"'{actual ?? "null"}' is not supported (expected '{expected}')");
        }
        Expect("prediction_type", json.String("prediction_type") ?? "epsilon", "flow_prediction");
        if (!json.Bool("use_flow_sigmas", false)) throw json.Error("use_flow_sigmas", "must be true (flow-matching models)");
        if (!json.Bool("predict_x0", true)) throw json.Error("predict_x0", "must be true");
        Expect("final_sigmas_type", json.String("final_sigmas_type") ?? "zero", "zero");
        int order = json.Int("solver_order", 2);
        if (order is not (1 or 2)) throw json.Error("solver_order", $"{order} is not supported (1 or 2)");
        string type = json.String("solver_type") ?? "bh2";
        if (type is not ("bh1" or "bh2")) throw json.Error("solver_type", $"'{type}' is not supported (bh1 or bh2)");
        if (!json.IsNull("solver_p")) throw json.Error("solver_p", "is not supported (must be null)");
    }

    /// <summary>
    /// The scheduler of a model that ships no scheduler config (single files): Wan2.1's own, UniPC (flow
    /// prediction, bh2, order 2) or flow-match Euler by <paramref name="name"/>, at <paramref name="shift"/>.
    /// </summary>
    public static IFlowScheduler CreateDefault(string? name, double shift, IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (!double.IsFinite(shift) || shift <= 0) throw new ArgumentOutOfRangeException(nameof(shift), shift, "flow shift must be a positive number");
        return (name?.ToLowerInvariant() ?? "unipc") switch
        {
            "unipc" => new UniPcScheduler(backend, new UniPcOptions { FlowShift = shift }),
            "euler" => new FlowMatchEulerScheduler(backend, shift, 1000),
            _ => throw new ArgumentException($"unknown scheduler '{name}' (expected {string.Join(" or ", Names)})", nameof(name)),
        };
    }

    private static void RequireFalse(ConfigJson json, params string[] keys)
    {
        foreach (string key in keys)
            if (json.Bool(key, false)) throw json.Error(key, "true is not supported");
    }
}
