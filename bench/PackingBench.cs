using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Sora.Kernels.Cpu;
using Sora.Native.Pipeline;
using Sora.Runtime;
using System.Diagnostics;

namespace Sora.Bench;

/// <summary>
/// Throughput of concurrent requests on the shipped model (weights/), packed into one transformer pass per step
/// (<see cref="WanPipeline.Step"/> over every job in flight), begun and decoded together (the batched
/// <see cref="WanPipeline.Start(IReadOnlyList{GenerationOptions}, IReadOnlyList{IProgress{StepProgress}?}?, CancellationToken)"/> and
/// <see cref="WanPipeline.Finish(IReadOnlyList{GenerationJob})"/>, as <c>sora serve</c> runs jobs that arrive together) against one
/// request after another. Requests are mixed: each its own prompt, three sizes and two lengths, 20 steps,
/// guidance 5, decoded to video. Report jobs per minute = 60 s · N / time.
/// Run: dotnet run --project bench -c Release -- --filter '*Packing*'
/// </summary>
[Config(typeof(PackingConfig))]
public class PackingBench
{
    /// <summary>Seven iterations with median and minimum: on the shared 2-core machine the minimum is the least disturbed figure.</summary>
    private sealed class PackingConfig : ManualConfig
    {
        public PackingConfig()
        {
            AddJob(Job.Default.WithWarmupCount(1).WithIterationCount(7).WithInvocationCount(1).WithUnrollFactor(1).WithLaunchCount(1));
            AddColumn(StatisticColumn.Median, StatisticColumn.Min);
        }
    }

    [Params(1, 4, 16)]
    public int Concurrent;

    private IBackend _backend = null!;
    private WanPipeline _pipeline = null!;
    private GenerationOptions[] _requests = [];

    [GlobalSetup]
    public void Setup() => Setup(new CpuBackend());

    private void Setup(IBackend backend)
    {
        _backend = backend;
        _pipeline = WanPipeline.Load(ShippedModel(), _backend);
        (int Frames, int Height, int Width)[] kinds = [(9, 32, 32), (5, 48, 32), (9, 32, 48), (5, 32, 32), (9, 48, 48), (5, 32, 48)];
        _requests = Enumerable.Range(0, Concurrent).Select(i => _pipeline.Defaults.Options(Prompt(i)) with
        {
            Frames = kinds[i % kinds.Length].Frames, Height = kinds[i % kinds.Length].Height, Width = kinds[i % kinds.Length].Width, Seed = i,
        }).ToArray();
        _pipeline.KeepTextEncoder = true;
    }

    private static readonly string[] Colours = ["red", "green", "blue", "yellow", "white", "black"];
    private static readonly string[] Shapes = ["circle", "square", "triangle"];
    private static readonly string[] Motions = ["moving right", "moving left", "moving up", "moving down", "growing", "shrinking", "bouncing"];

    /// <summary>Request i's prompt in the shipped model's caption grammar: every request of a run has its own.</summary>
    private static string Prompt(int i)
    {
        string colour = Colours[i % Colours.Length];
        string background = Colours[(i + 1 + i / Colours.Length) % Colours.Length];
        return $"a {colour} {Shapes[i % Shapes.Length]} {Motions[i % Motions.Length]} on a {background} background";
    }

    [Benchmark(Baseline = true)]
    public int OneAtATime()
    {
        int frames = 0;
        foreach (var r in _requests)
        {
            var result = _pipeline.Generate(r);
            result.Latents?.Dispose();
            frames += result.Video!.Frames;
        }
        return frames;
    }

    [Benchmark]
    public int Packed()
    {
        var jobs = _pipeline.Start(_requests).ToList();
        int frames = 0;
        try
        {
            while (jobs.Any(j => !j.IsFinished)) _pipeline.Step(jobs.Where(j => !j.IsFinished).ToList());
            foreach (var result in _pipeline.Finish(jobs))
            {
                result.Latents?.Dispose();
                frames += result.Video!.Frames;
            }
            return frames;
        }
        finally
        {
            foreach (var j in jobs) j.Dispose();
        }
    }

    /// <summary>
    /// `--profile packing`: the 16-request run both ways (after a warm-up of each) through <see cref="TimingBackend"/>,
    /// with wall time split by phase (begin: prompts encoded and noise drawn; steps; finish: decode) and the ops.
    /// </summary>
    internal static void Profile()
    {
        var timing = new TimingBackend(new CpuBackend(2));
        var bench = new PackingBench { Concurrent = 16 };
        bench.Setup(timing);
        try
        {
            foreach (bool packed in new[] { false, true })
            {
                bench.Phased(packed);
                timing.Reset();
                var phases = bench.Phased(packed);
                Console.WriteLine($"{(packed ? "packed" : "one at a time")}: begin {phases.Begin:F3} s, steps {phases.Steps:F3} s, finish {phases.Finish:F3} s");
                timing.Print(phases.Begin + phases.Steps + phases.Finish);
            }
        }
        finally
        {
            bench.Cleanup();
        }
    }

    /// <summary>One run, packed or one at a time, through Start/Step/Finish; seconds spent in each.</summary>
    private (double Begin, double Steps, double Finish) Phased(bool packed)
    {
        double begin = 0, steps = 0, finish = 0;
        var groups = packed ? [_requests] : _requests.Select(r => new[] { r }).ToArray();
        foreach (var group in groups)
        {
            long t0 = Stopwatch.GetTimestamp();
            var jobs = _pipeline.Start(group).ToList();
            long t1 = Stopwatch.GetTimestamp();
            while (jobs.Any(j => !j.IsFinished)) _pipeline.Step(jobs.Where(j => !j.IsFinished).ToList());
            long t2 = Stopwatch.GetTimestamp();
            foreach (var result in _pipeline.Finish(jobs)) result.Latents?.Dispose();
            foreach (var j in jobs) j.Dispose();
            long t3 = Stopwatch.GetTimestamp();
            begin += Stopwatch.GetElapsedTime(t0, t1).TotalSeconds;
            steps += Stopwatch.GetElapsedTime(t1, t2).TotalSeconds;
            finish += Stopwatch.GetElapsedTime(t2, t3).TotalSeconds;
        }
        return (begin, steps, finish);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pipeline.Dispose();
        _backend.Dispose();
    }

    /// <summary>weights/ of the repository this benchmark was built from (found by walking up from the binary).</summary>
    private static string ShippedModel()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "weights");
            if (File.Exists(Path.Combine(candidate, "model_index.json"))) return candidate;
        }
        throw new DirectoryNotFoundException("the shipped model (weights/) was not found above " + AppContext.BaseDirectory);
    }
}
