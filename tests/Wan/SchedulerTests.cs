using Sora.Native.Loading;
using Sora.Native.Schedulers;
using Sora.Runtime;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>The flow schedulers: tables against diffusers (fixture), step math against a float64 reference.</summary>
public sealed class SchedulerTests
{
    private static string ConfigPath => Path.Combine(FixtureDir, "model", "scheduler", "scheduler_config.json");
    private static readonly Dictionary<string, (int[] Shape, float[] Data)> Case = ReadAll(Path.Combine(FixtureDir, "scheduler_case.safetensors"));

    [Theory]
    [InlineData(4)]
    [InlineData(10)]
    [InlineData(50)]
    public void UniPc_tables_match_diffusers(int steps)
    {
        using var backend = NewCpuBackend();
        using var scheduler = FlowSchedulers.Create(null, ConfigPath, backend);
        Assert.IsType<UniPcScheduler>(scheduler);
        scheduler.SetTimesteps(steps);
        Assert.Equal(Case[$"timesteps_{steps}"].Data, scheduler.Timesteps); // integers: exact
        AssertClose(Case[$"sigmas_{steps}"].Data, scheduler.Sigmas, 1e-6);
    }

    [Fact]
    public void Euler_tables_match_diffusers()
    {
        using var backend = NewCpuBackend();
        using var scheduler = FlowSchedulers.Create("euler", ConfigPath, backend);
        Assert.IsType<FlowMatchEulerScheduler>(scheduler);
        scheduler.SetTimesteps(10);
        AssertClose(Case["euler_timesteps_10"].Data, scheduler.Timesteps, 1e-6 * 1000);
        AssertClose(Case["euler_sigmas_10"].Data, scheduler.Sigmas, 1e-6);
    }

    private static void AssertClose(float[] expected, IReadOnlyList<float> actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Count);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"entry {i}: {actual[i]} vs {expected[i]}");
    }

    [Theory]
    [InlineData(1, 2, "bh2", true)]
    [InlineData(2, 2, "bh2", true)]
    [InlineData(5, 2, "bh2", true)]
    [InlineData(7, 2, "bh1", true)]
    [InlineData(6, 1, "bh2", true)]
    [InlineData(6, 2, "bh2", false)]
    public void UniPc_steps_match_a_float64_reference(int steps, int order, string solverType, bool lowerOrderFinal)
    {
        var options = new UniPcOptions { FlowShift = 3.0, SolverOrder = order, SolverType = solverType, LowerOrderFinal = lowerOrderFinal };
        using var backend = NewCpuBackend();
        using var scheduler = new UniPcScheduler(backend, options);
        scheduler.SetTimesteps(steps);

        var rng = new Random(steps * 10 + order);
        int n = 257;
        var x0 = Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        var noise = Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        // A velocity that depends non-linearly on the sample, so every history term matters.
        double[] Model(double[] x, double sigma) => x.Select((v, j) => noise[j] - x0[j] + 0.3 * Math.Sin(3 * v) * sigma).ToArray();

        var sample = noise.Select(v => (float)v).ToArray();
        using var xs = Tensor.FromArray(sample, [n]);
        for (int i = 0; i < steps; i++)
        {
            var v = Model(xs.ToFloatArray().Select(f => (double)f).ToArray(), scheduler.Sigmas[i]);
            using var vt = Tensor.FromArray(v.Select(d => (float)d).ToArray(), [n]);
            scheduler.Step(vt, xs);
        }
        var expected = UniPcReference.Run(scheduler.Sigmas.Select(s => (double)s).ToArray(), noise, Model, order, solverType == "bh2", lowerOrderFinal);
        double error = RelativeError(xs.ToFloatArray(), expected.Select(d => (float)d).ToArray());
        Assert.True(error < 1e-5, $"relative error {error:E2}");
    }

    [Fact]
    public void The_last_UniPc_step_returns_the_x0_prediction()
    {
        using var backend = NewCpuBackend();
        using var scheduler = new UniPcScheduler(backend);
        scheduler.SetTimesteps(1);
        var x = new float[] { 0.5f, -1.25f, 2f };
        var v = new float[] { 0.25f, 0.5f, -1f };
        using var xs = Tensor.FromArray(x, [3]);
        using var vs = Tensor.FromArray(v, [3]);
        scheduler.Step(vs, xs);
        float sigma = scheduler.Sigmas[0];
        Assert.Equal(x.Select((xi, j) => xi - sigma * v[j]).ToArray(), xs.ToFloatArray());
        Assert.Throws<InvalidOperationException>(() => scheduler.Step(vs, xs));
    }

    [Fact]
    public void Euler_step_moves_by_the_sigma_difference()
    {
        using var backend = NewCpuBackend();
        using var scheduler = new FlowMatchEulerScheduler(backend, shift: 3.0);
        scheduler.SetTimesteps(3);
        var x = new float[] { 0.5f, -1.25f, 2f };
        var v = new float[] { 0.25f, 0.5f, -1f };
        using var xs = Tensor.FromArray(x, [3]);
        using var vs = Tensor.FromArray(v, [3]);
        scheduler.Step(vs, xs);
        float dt = scheduler.Sigmas[1] - scheduler.Sigmas[0];
        var actual = xs.ToFloatArray();
        for (int j = 0; j < 3; j++) Assert.Equal(x[j] + dt * v[j], actual[j], 6);
    }

    [Theory]
    [InlineData("_class_name", "\"DDIMScheduler\"")]
    [InlineData("prediction_type", "\"epsilon\"")]
    [InlineData("use_flow_sigmas", "false")]
    [InlineData("final_sigmas_type", "\"sigma_min\"")]
    [InlineData("solver_order", "3")]
    [InlineData("use_karras_sigmas", "true")]
    [InlineData("flow_shift", "\"three\"")]
    public void Unsupported_scheduler_settings_name_the_key(string key, string value)
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "scheduler_config.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(ConfigPath))!.AsObject();
        json[key] = System.Text.Json.Nodes.JsonNode.Parse(value);
        File.WriteAllText(path, json.ToJsonString());
        using var backend = NewCpuBackend();
        var ex = Assert.Throws<ModelLoadException>(() => FlowSchedulers.Create(null, path, backend));
        Assert.Contains(key, ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void Unknown_solver_names_are_rejected()
    {
        using var backend = NewCpuBackend();
        var ex = Assert.Throws<ArgumentException>(() => FlowSchedulers.Create("heun", ConfigPath, backend));
        Assert.Contains("heun", ex.Message);
    }
}

/// <summary>
/// diffusers' UniPC multistep update (predict_x0, flow sigmas) transcribed in float64 on arrays, with the general
/// solve of the order conditions (R·ρ = b) instead of the closed forms the scheduler uses.
/// </summary>
internal static class UniPcReference
{
    public static double[] Run(double[] sigmas, double[] sample, Func<double[], double, double[]> model, int solverOrder, bool bh2, bool lowerOrderFinal)
    {
        int steps = sigmas.Length - 1;
        var outputs = new double[solverOrder][];
        double[]? last = null;
        int lowerOrderNums = 0, thisOrder = 0;
        var x = (double[])sample.Clone();
        for (int i = 0; i < steps; i++)
        {
            var v = model(x, sigmas[i]);
            var converted = x.Select((xi, j) => xi - sigmas[i] * v[j]).ToArray();
            if (i > 0 && last is not null)
                x = Corrector(sigmas, i, outputs, converted, last, thisOrder, bh2);
            for (int k = 0; k < solverOrder - 1; k++) outputs[k] = outputs[k + 1];
            outputs[^1] = converted;
            int order = lowerOrderFinal ? Math.Min(solverOrder, steps - i) : solverOrder;
            order = Math.Min(order, lowerOrderNums + 1);
            if (sigmas[i + 1] == 0) order = 1;
            thisOrder = order;
            last = x;
            x = Predictor(sigmas, i, outputs, x, order, bh2);
            if (lowerOrderNums < solverOrder) lowerOrderNums++;
        }
        return x;
    }

    private static double Lambda(double s) => Math.Log(1 - s) - Math.Log(s);

    private static double[] Predictor(double[] sigmas, int i, double[][] outputs, double[] x, int order, bool bh2)
    {
        double st = sigmas[i + 1], s0 = sigmas[i], at = 1 - st;
        double h = Lambda(st) - Lambda(s0), hh = -h, phi = Math.Exp(hh) - 1, bh = bh2 ? Math.Exp(hh) - 1 : hh;
        var m0 = outputs[^1];
        var d1s = new List<double[]>();
        var rks = new List<double>();
        for (int k = 1; k < order; k++)
        {
            double rk = (Lambda(sigmas[i - k]) - Lambda(s0)) / h;
            rks.Add(rk);
            var mi = outputs[^(k + 1)];
            d1s.Add(mi.Select((m, j) => (m - m0[j]) / rk).ToArray());
        }
        double[] rho = order == 2 ? [0.5] : [];
        return x.Select((xi, j) =>
        {
            double res = 0;
            for (int k = 0; k < d1s.Count; k++) res += rho[k] * d1s[k][j];
            // No history term at first order (diffusers multiplies B(h)·0, which is NaN for bh1 at σ = 0).
            return st / s0 * xi - at * phi * m0[j] - (d1s.Count == 0 ? 0 : at * bh * res);
        }).ToArray();
    }

    private static double[] Corrector(double[] sigmas, int i, double[][] outputs, double[] modelT, double[] last, int order, bool bh2)
    {
        double st = sigmas[i], s0 = sigmas[i - 1], at = 1 - st;
        double h = Lambda(st) - Lambda(s0), hh = -h, phi = Math.Exp(hh) - 1, bh = bh2 ? Math.Exp(hh) - 1 : hh;
        var m0 = outputs[^1];
        var rks = new List<double>();
        var d1s = new List<double[]>();
        for (int k = 1; k < order; k++)
        {
            double rk = (Lambda(sigmas[i - (k + 1)]) - Lambda(s0)) / h;
            rks.Add(rk);
            var mi = outputs[^(k + 1)];
            d1s.Add(mi.Select((m, j) => (m - m0[j]) / rk).ToArray());
        }
        rks.Add(1.0);
        // R[k][c] = rks[c]^k, b[k] = h_phi_k · k! / B(h), h_phi_k recursively as in diffusers.
        var r = new double[order, order];
        var b = new double[order];
        double hPhiK = phi / hh - 1, factorial = 1;
        for (int k = 1; k <= order; k++)
        {
            for (int c = 0; c < order; c++) r[k - 1, c] = Math.Pow(rks[c], k - 1);
            b[k - 1] = hPhiK * factorial / bh;
            factorial *= k + 1;
            hPhiK = hPhiK / hh - 1 / factorial;
        }
        double[] rho = order == 1 ? [0.5] : Solve(r, b);
        return last.Select((xl, j) =>
        {
            double corr = 0;
            for (int k = 0; k < d1s.Count; k++) corr += rho[k] * d1s[k][j];
            double d1t = modelT[j] - m0[j];
            return st / s0 * xl - at * phi * m0[j] - at * bh * (corr + rho[^1] * d1t);
        }).ToArray();
    }

    /// <summary>Gaussian elimination with partial pivoting.</summary>
    private static double[] Solve(double[,] a, double[] b)
    {
        int n = b.Length;
        var m = (double[,])a.Clone();
        var y = (double[])b.Clone();
        for (int c = 0; c < n; c++)
        {
            int p = c;
            for (int r = c + 1; r < n; r++) if (Math.Abs(m[r, c]) > Math.Abs(m[p, c])) p = r;
            for (int k = 0; k < n; k++) (m[c, k], m[p, k]) = (m[p, k], m[c, k]);
            (y[c], y[p]) = (y[p], y[c]);
            for (int r = c + 1; r < n; r++)
            {
                double f = m[r, c] / m[c, c];
                for (int k = c; k < n; k++) m[r, k] -= f * m[c, k];
                y[r] -= f * y[c];
            }
        }
        var x = new double[n];
        for (int r = n - 1; r >= 0; r--)
        {
            double s = y[r];
            for (int k = r + 1; k < n; k++) s -= m[r, k] * x[k];
            x[r] = s / m[r, r];
        }
        return x;
    }
}
