using System.Diagnostics;
using Sora.Kernels.Cpu;
using Sora.Runtime;

namespace Sora.Bench;

/// <summary>
/// `--profile vae|transformer|packing`: runs one whole-model benchmark call (after a warm-up call) through
/// <see cref="TimingBackend"/> and prints where the time went, by op and shape, largest first.
/// </summary>
public static class OpProfile
{
    public static int Run(string which)
    {
        if (which == "packing")
        {
            PackingBench.Profile();
            return 0;
        }
        var timing = new TimingBackend(new CpuBackend(2));
        Action call;
        IDisposable bench;
        switch (which)
        {
            case "vae":
                var vae = new WanVaeDecodeBench();
                vae.Setup(timing);
                (call, bench) = (vae.Decode, vae);
                break;
            case "transformer":
                var dit = new WanTransformerStepBench();
                dit.Setup(timing);
                (call, bench) = (dit.Step, dit);
                break;
            default:
                Console.Error.WriteLine($"profile: '{which}' is not a case (vae, transformer, packing)");
                return 2;
        }
        using (bench)
        {
            call();
            timing.Reset();
            long start = Stopwatch.GetTimestamp();
            call();
            double total = Stopwatch.GetElapsedTime(start).TotalSeconds;
            timing.Print(total);
        }
        return 0;
    }
}

/// <summary>
/// Forwards every op to a synchronous backend (the CPU backend) and adds up its wall time per op and shape.
/// </summary>
internal sealed class TimingBackend(IBackend inner) : IBackend
{
    private readonly Dictionary<string, (int Calls, long Ticks)> _ops = new();

    public void Reset() => _ops.Clear();

    public void Print(double totalSeconds)
    {
        double opSeconds = _ops.Values.Sum(v => v.Ticks) / (double)Stopwatch.Frequency;
        Console.WriteLine($"total {totalSeconds:F2} s, in ops {opSeconds:F2} s");
        Console.WriteLine($"{"op",-64} {"calls",6} {"seconds",8} {"share",6}");
        foreach (var (op, (calls, ticks)) in _ops.OrderByDescending(kv => kv.Value.Ticks))
        {
            double s = ticks / (double)Stopwatch.Frequency;
            if (s < 0.005 * totalSeconds) continue;
            Console.WriteLine($"{op,-64} {calls,6} {s,8:F3} {s / totalSeconds,6:P1}");
        }
    }

    private void Record(string op, long start)
    {
        long ticks = Stopwatch.GetTimestamp() - start;
        _ops[op] = _ops.TryGetValue(op, out var v) ? (v.Calls + 1, v.Ticks + ticks) : (1, ticks);
    }

    private static string S(Tensor t) => string.Join("×", t.Shape);

    public DeviceInfo Device => inner.Device;
    public MemoryStats Memory => inner.Memory;
    public void ResetPeakMemory() => inner.ResetPeakMemory();
    public long PooledBytes => inner.PooledBytes;
    public void TrimPool() => inner.TrimPool();
    public void Synchronize() => inner.Synchronize();
    public Tensor Allocate(DType dtype, params int[] shape) => inner.Allocate(dtype, shape);
    public Tensor ToDevice(Tensor host) => inner.ToDevice(host);
    public Tensor ToHost(Tensor tensor) => inner.ToHost(tensor);

    public void Copy(Tensor src, Tensor dst)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Copy(src, dst);
        Record("Copy", t);
    }

    public void Gemm(Tensor x, Tensor w, Tensor? bias, Tensor y, GemmEpilogue epilogue = GemmEpilogue.None, Tensor? residual = null, Tensor? gate = null)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Gemm(x, w, bias, y, epilogue, residual, gate);
        Record($"Gemm x {S(x)} · w {S(w)}ᵀ {epilogue}", t);
    }

    public void Attention(Tensor q, Tensor k, Tensor v, Tensor o, AttentionOptions options)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Attention(q, k, v, o, options);
        Record($"Attention q {S(q)} k {S(k)}", t);
    }

    public void ApplyRope(Tensor x, Tensor cos, Tensor sin)
    {
        long t = Stopwatch.GetTimestamp();
        inner.ApplyRope(x, cos, sin);
        Record("ApplyRope", t);
    }

    public void Conv3d(Tensor x, Tensor w, Tensor? bias, Tensor y, Conv3dGeometry geometry, Tensor? timeCache = null)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Conv3d(x, w, bias, y, geometry, timeCache);
        Record($"Conv3d w {S(w)} → y {S(y)}", t);
    }

    public void LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.LayerNorm(x, weight, bias, eps, y);
        Record("LayerNorm", t);
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.RmsNorm(x, weight, eps, y);
        Record("RmsNorm", t);
    }

    public void ChannelRmsNorm(Tensor x, Tensor gamma, Tensor? beta, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.ChannelRmsNorm(x, gamma, beta, y);
        Record($"ChannelRmsNorm {S(x)}", t);
    }

    public void AdaLnModulate(Tensor x, Tensor shift, Tensor scale, float eps, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.AdaLnModulate(x, shift, scale, eps, y);
        Record("AdaLnModulate", t);
    }

    public void GatedResidual(Tensor x, Tensor y, Tensor gate)
    {
        long t = Stopwatch.GetTimestamp();
        inner.GatedResidual(x, y, gate);
        Record("GatedResidual", t);
    }

    public void AdaLnModulateRows(Tensor x, Tensor shiftBase, Tensor shift, Tensor scaleBase, Tensor scale, ReadOnlySpan<int> rowSets, float eps, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.AdaLnModulateRows(x, shiftBase, shift, scaleBase, scale, rowSets, eps, y);
        Record("AdaLnModulateRows", t);
    }

    public void GemmGatedRows(Tensor x, Tensor w, Tensor? bias, Tensor y, Tensor residual, Tensor gateBase, Tensor gate, ReadOnlySpan<int> rowSets)
    {
        long t = Stopwatch.GetTimestamp();
        inner.GemmGatedRows(x, w, bias, y, residual, gateBase, gate, rowSets);
        Record($"GemmGatedRows x {S(x)} · w {S(w)}ᵀ", t);
    }

    public void GeluTanh(Tensor x, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.GeluTanh(x, y);
        Record("GeluTanh", t);
    }

    public void Silu(Tensor x, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Silu(x, y);
        Record("Silu", t);
    }

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Add(a, b, y);
        Record("Add", t);
    }

    public void Mul(Tensor a, Tensor b, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Mul(a, b, y);
        Record("Mul", t);
    }

    public void ScaleShift(Tensor x, float a, float b, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.ScaleShift(x, a, b, y);
        Record("ScaleShift", t);
    }

    public void Clamp(Tensor x, float min, float max, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Clamp(x, min, max, y);
        Record("Clamp", t);
    }

    public void ChannelAffine(Tensor x, float[] scale, float[] shift, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.ChannelAffine(x, scale, shift, y);
        Record("ChannelAffine", t);
    }

    public void CfgCombine(Tensor uncond, Tensor cond, float guidance, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.CfgCombine(uncond, cond, guidance, y);
        Record("CfgCombine", t);
    }

    public void Upsample2x(Tensor x, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Upsample2x(x, y);
        Record($"Upsample2x {S(x)}", t);
    }

    public void TimestepEmbedding(float[] timesteps, int dim, bool flipSinToCos, float downscaleFreqShift, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.TimestepEmbedding(timesteps, dim, flipSinToCos, downscaleFreqShift, y);
        Record("TimestepEmbedding", t);
    }

    public void Embedding(int[] ids, Tensor table, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Embedding(ids, table, y);
        Record("Embedding", t);
    }

    public void Patchify(Tensor x, int pt, int ph, int pw, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Patchify(x, pt, ph, pw, y);
        Record("Patchify", t);
    }

    public void Unpatchify(Tensor x, int pt, int ph, int pw, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Unpatchify(x, pt, ph, pw, y);
        Record("Unpatchify", t);
    }

    public void EulerStep(Tensor x, Tensor v, float sigma, float sigmaNext)
    {
        long t = Stopwatch.GetTimestamp();
        inner.EulerStep(x, v, sigma, sigmaNext);
        Record("EulerStep", t);
    }

    public void LinearCombination(ReadOnlySpan<float> coefficients, ReadOnlySpan<Tensor> terms, Tensor y)
    {
        long t = Stopwatch.GetTimestamp();
        inner.LinearCombination(coefficients, terms, y);
        Record("LinearCombination", t);
    }

    public void Dispose() => inner.Dispose();
}
