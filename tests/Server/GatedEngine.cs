using Sora.Cli.Serve;
using Sora.Native.Video;

namespace Sora.Tests.Server;

/// <summary>The real engine, its first pass held until the test lets it go; records how many jobs each begin and finish took.</summary>
internal sealed class GatedEngine(IVideoEngine inner) : IVideoEngine
{
    private bool _released;
    public ManualResetEventSlim Entered { get; } = new(false);
    public ManualResetEventSlim Gate { get; } = new(false);
    public List<int> BeginSizes { get; } = [];
    public List<int> FinishSizes { get; } = [];

    public string ModelId => inner.ModelId;
    public long WorkingBytes => inner.WorkingBytes;
    public void Idle() => inner.Idle();
    public ClipGeometry Geometry => inner.Geometry;
    public int DefaultSteps => inner.DefaultSteps;
    public double DefaultGuidance => inner.DefaultGuidance;
    public int DefaultExtendFrames => inner.DefaultExtendFrames;
    public double DefaultStrength => inner.DefaultStrength;
    public (int Width, int Height) SizeFor(int sourceWidth, int sourceHeight) => inner.SizeFor(sourceWidth, sourceHeight);
    public int PassTokens(JobSpec spec) => inner.PassTokens(spec);
    public IReadOnlyList<Begun> Begin(IReadOnlyList<JobStart> jobs)
    {
        lock (BeginSizes) BeginSizes.Add(jobs.Count);
        return inner.Begin(jobs);
    }

    public void Step(IReadOnlyList<IEngineJob> jobs)
    {
        Entered.Set();
        if (!_released && !Gate.Wait(TestServer.JobTimeout)) throw new TimeoutException("the test never released the first pass");
        _released = true;
        inner.Step(jobs);
    }

    public IReadOnlyList<VideoFrames> Finish(IReadOnlyList<IEngineJob> jobs)
    {
        lock (FinishSizes) FinishSizes.Add(jobs.Count);
        return inner.Finish(jobs);
    }

    public void Dispose() { } // the shared engine stays loaded
}
