using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Sora.Runtime;

namespace Sora.Bench;

/// <summary>
/// Settings shared by the CPU benchmarks: few iterations (the big cases take a second each) and a throughput
/// column (GFLOP/s for compute-bound ops, GB/s for bandwidth-bound ones) comparable with tools/torch_peer.py.
/// </summary>
public sealed class CpuBenchConfig : ManualConfig
{
    public CpuBenchConfig()
    {
        AddJob(Job.Default.WithWarmupCount(2).WithIterationCount(7).WithLaunchCount(1));
        AddColumn(new ThroughputColumn());
    }
}

/// <summary>The work one benchmark invocation does: FLOPs (FLOP counted as torch_peer.py does) or bytes moved.</summary>
public interface ICpuBenchWork
{
    /// <summary>(amount, unit) with unit "GFLOP/s" or "GB/s".</summary>
    (double Amount, string Unit) Work { get; }
}

public sealed class ThroughputColumn : IColumn
{
    public string Id => nameof(ThroughputColumn);
    public string ColumnName => "Throughput";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "GFLOP/s (compute ops) or GB/s (bandwidth ops) at the mean time";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null) return "-";
        var instance = (ICpuBenchWork)Activator.CreateInstance(benchmarkCase.Descriptor.Type)!;
        foreach (var p in benchmarkCase.Parameters.Items)
            benchmarkCase.Descriptor.Type.GetField(p.Name)?.SetValue(instance, p.Value);
        var (amount, unit) = instance.Work;
        return $"{amount / stats.Mean:F1} {unit}"; // amount per nanosecond = G-amount per second
    }
}

/// <summary>Seeded random host tensors for benchmarks (never zeros).</summary>
public static class BenchData
{
    public static Tensor Random(int seed, DType dtype, params int[] shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        var rng = new Random(seed);
        var data = new float[n];
        for (long i = 0; i < n; i++) data[i] = (float)(rng.NextDouble() * 2 - 1);
        return Tensor.FromArray(data, shape, dtype);
    }

    public static int[] Dims(string shape) => shape.Split('x').Select(int.Parse).ToArray();

    /// <summary>The work of a GEMM of shape "MxKxN": 2·M·K·N floating-point operations.</summary>
    public static (double, string) GemmWork(string shape)
    {
        int[] d = Dims(shape);
        return (2.0 * d[0] * d[1] * d[2], "GFLOP/s");
    }
}
