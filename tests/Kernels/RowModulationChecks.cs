using Sora.Runtime;
using Xunit;
using static Sora.Tests.Kernels.OpTestKit;

namespace Sora.Tests.Kernels;

/// <summary>
/// Checks of the per-row modulation ops (<see cref="IBackend.AdaLnModulateRows"/>, <see cref="IBackend.GemmGatedRows"/>)
/// against the float64 reference, shared by every backend's tests. The per-set tensors are strided views into
/// NaN-filled buffers (as the model passes column views of timestep_proj), so a wrong stride or set reads NaN.
/// </summary>
public static class RowModulationChecks
{
    /// <summary>
    /// Set indices for m rows and g sets: a leading run of set 0 (a known frame), then every set at least once
    /// where m allows, the rest random.
    /// </summary>
    public static int[] Sets(int m, int g, int seed)
    {
        var rng = new Random(seed);
        var sets = new int[m];
        int run = m / 3;
        for (int r = run; r < m; r++) sets[r] = r - run < g ? (r - run) % g : rng.Next(g);
        return sets;
    }

    public static void AdaLnRows(IBackend backend, int m, int n, int g, int seed, bool inPlace = false, DType baseType = DType.F32)
    {
        float[] x = Random(m * n, seed, 2f).Select(v => v + 3f).ToArray();
        float[] shb = Round(Random(n, seed + 1), baseType), scb = Round(Random(n, seed + 2, 0.5f), baseType);
        float[] sh = Random(g * n, seed + 3), sc = Random(g * n, seed + 4, 0.5f);
        int[] sets = Sets(m, g, seed + 5);
        using var xt = Upload(backend, x, [m, n]);
        using var shbt = Upload(backend, shb, [n], baseType);
        using var scbt = Upload(backend, scb, [n], baseType);
        var sht = StridedRows(backend, sh, g, n, 3 * n + 1, out var shOwner);
        var sct = StridedRows(backend, sc, g, n, 2 * n + 3, out var scOwner);
        using (shOwner)
        using (scOwner)
        using (var poisoned = Poisoned(backend, m, n))
        {
            var y = inPlace ? xt : poisoned;
            backend.AdaLnModulateRows(xt, shbt, sht, scbt, sct, sets, 1e-6f, y);
            var expected = Reference.AdaLnModulateRows(D(x), m, n, D(shb), D(sh), D(scb), D(sc), sets, 1e-6);
            AssertClose(expected, Download(backend, y), 1e-5, $"AdaLnModulateRows {m}x{n}, {g} sets{(inPlace ? ", in place" : "")}");
        }
    }

    public static void GemmRows(IBackend backend, int m, int n, int k, int g, int seed, DType wtype = DType.F32, bool residualIsY = false, bool withBias = true)
    {
        float[] x = Random(m * k, seed), w = Round(Random(n * k, seed + 1), wtype), b = Random(n, seed + 2);
        float[] r = Random(m * n, seed + 3), gb = Random(n, seed + 4), gs = Random(g * n, seed + 5);
        int[] sets = Sets(m, g, seed + 6);
        using var xt = Upload(backend, x, [m, k]);
        using var wt = Upload(backend, w, [n, k], wtype);
        using var bt = Upload(backend, b, [n]);
        using var rt = Upload(backend, r, [m, n]);
        using var gbt = Upload(backend, gb, [n]);
        var gst = StridedRows(backend, gs, g, n, 6 * n, out var gsOwner);
        using (gsOwner)
        using (var poisoned = Poisoned(backend, m, n))
        {
            var y = residualIsY ? rt : poisoned;
            backend.GemmGatedRows(xt, wt, withBias ? bt : null, y, rt, gbt, gst, sets);
            var expected = Reference.GemmGatedRows(D(x), D(w), withBias ? D(b) : null, m, n, k, D(r), D(gb), D(gs), sets);
            AssertClose(expected, Download(backend, y), 1e-5, $"GemmGatedRows {m}x{n}x{k} {wtype}, {g} sets{(residualIsY ? ", residual = y" : "")}");
        }
    }

    /// <summary>Wrong set counts, out-of-range sets and mis-shaped per-set tensors are errors naming the argument.</summary>
    public static void BadArgumentsAreRejected(IBackend backend)
    {
        int m = 4, n = 8, k = 5;
        using var x = Upload(backend, Random(m * n, 1), [m, n]);
        using var xk = Upload(backend, Random(m * k, 2), [m, k]);
        using var w = Upload(backend, Random(n * k, 3), [n, k]);
        using var vec = Upload(backend, Random(n, 4), [n]);
        using var sets2 = Upload(backend, Random(2 * n, 5), [2, n]);
        using var narrow = Upload(backend, Random(2 * (n - 1), 6), [2, n - 1]);
        using var y = Poisoned(backend, m, n);

        void Expect<TException>(string param, Action call) where TException : ArgumentException
            => Assert.Equal(param, Assert.Throws<TException>(call).ParamName);

        Expect<ArgumentException>("rowSets", () => backend.AdaLnModulateRows(x, vec, sets2, vec, sets2, [0, 1, 0], 1e-6f, y));
        Expect<ArgumentOutOfRangeException>("rowSets", () => backend.AdaLnModulateRows(x, vec, sets2, vec, sets2, [0, 1, 2, 0], 1e-6f, y));
        Expect<ArgumentOutOfRangeException>("rowSets", () => backend.AdaLnModulateRows(x, vec, sets2, vec, sets2, [0, -1, 0, 0], 1e-6f, y));
        Expect<ArgumentException>("shift", () => backend.AdaLnModulateRows(x, vec, narrow, vec, sets2, [0, 1, 0, 0], 1e-6f, y));
        Expect<ArgumentException>("scale", () => backend.AdaLnModulateRows(x, vec, sets2, vec, vec, [0, 1, 0, 0], 1e-6f, y));
        Expect<ArgumentException>("rowSets", () => backend.GemmGatedRows(xk, w, vec, y, y, vec, sets2, [0, 1]));
        Expect<ArgumentOutOfRangeException>("rowSets", () => backend.GemmGatedRows(xk, w, vec, y, y, vec, sets2, [0, 1, 1, 5]));
        Expect<ArgumentException>("gate", () => backend.GemmGatedRows(xk, w, vec, y, y, vec, narrow, [0, 1, 1, 0]));
        Expect<ArgumentException>("gateBase", () => backend.GemmGatedRows(xk, w, vec, y, y, sets2, sets2, [0, 1, 1, 0]));
        // Nothing was written by the rejected calls.
        Assert.All(Download(backend, y), v => Assert.True(float.IsNaN(v)));
    }
}
