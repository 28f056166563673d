using Sora.Runtime;
using Xunit;

namespace Sora.Tests.Kernels;

/// <summary>
/// Shared helpers for op tests of any backend: fresh random inputs (never zeros), NaN-poisoned outputs so
/// unwritten elements fail, and a relative-error assert that fails on any NaN or infinity.
/// </summary>
public static class OpTestKit
{
    /// <summary>Uniform values in [−scale, scale] from a seeded generator (a fresh seed per input).</summary>
    public static float[] Random(int count, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var data = new float[count];
        for (int i = 0; i < count; i++) data[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return data;
    }

    /// <summary>The values as they are after storing in <paramref name="dtype"/> (what a kernel reads back).</summary>
    public static float[] Round(float[] values, DType dtype)
    {
        using var t = Tensor.FromArray(values, [values.Length], dtype);
        return t.ToFloatArray();
    }

    public static double[] D(float[] values) => Array.ConvertAll(values, v => (double)v);

    /// <summary>A new device tensor holding <paramref name="data"/> stored as <paramref name="dtype"/>.</summary>
    public static Tensor Upload(IBackend backend, float[] data, int[] shape, DType dtype = DType.F32)
    {
        using var host = Tensor.FromArray(data, shape, dtype);
        return backend.ToDevice(host);
    }

    /// <summary>A new F32 device tensor filled with NaN.</summary>
    public static Tensor Poisoned(IBackend backend, params int[] shape)
    {
        var t = backend.Allocate(DType.F32, shape);
        long n = t.ElementCount;
        var nan = new float[n];
        Array.Fill(nan, float.NaN);
        using var host = Tensor.FromArray(nan, shape);
        backend.Copy(host, t);
        return t;
    }

    /// <summary>
    /// A [rows, cols] view with row stride <paramref name="stride"/> into a NaN-filled buffer, the view holding
    /// <paramref name="data"/> (or NaN when data is null): checks that kernels honour row strides.
    /// </summary>
    public static Tensor StridedRows(IBackend backend, float[]? data, int rows, int cols, int stride, out Tensor owner)
    {
        var full = new float[rows * stride];
        Array.Fill(full, float.NaN);
        if (data is not null)
            for (int r = 0; r < rows; r++) Array.Copy(data, r * cols, full, r * stride, cols);
        owner = Upload(backend, full, [rows, stride]);
        return owner.Slice(1, 0, cols);
    }

    public static float[] Download(IBackend backend, Tensor t)
    {
        using var host = backend.ToHost(t);
        return host.ToFloatArray();
    }

    /// <summary>‖actual − expected‖ / ‖expected‖ below <paramref name="tolerance"/>; any non-finite value fails.</summary>
    public static void AssertClose(double[] expected, float[] actual, double tolerance = 1e-5, string what = "output")
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i])) Assert.Fail($"{what}[{i}] = {actual[i]} (expected {expected[i]})");
            double e = actual[i] - expected[i];
            diff += e * e;
            norm += expected[i] * expected[i];
        }
        double err = norm > 0 ? Math.Sqrt(diff / norm) : Math.Sqrt(diff);
        Assert.True(err < tolerance, $"{what}: relative error {err:E3} ≥ {tolerance:E1}");
    }

    /// <summary>Every element equal (bit patterns of the float values), for pure data movement.</summary>
    public static void AssertExact(double[] expected, float[] actual, string what = "output")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < actual.Length; i++)
            if (actual[i] != (float)expected[i]) Assert.Fail($"{what}[{i}] = {actual[i]}, expected {expected[i]}");
    }
}
