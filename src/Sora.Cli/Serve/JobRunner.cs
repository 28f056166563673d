using System.Diagnostics;
using Sora.Native.Pipeline;
using Sora.Native.Video;

namespace Sora.Cli.Serve;

/// <summary>
/// The loop that owns the device: claims the oldest queued job from the store, runs it through the engine, writes
/// its files and marks it completed or failed, then takes the next. It runs on one dedicated thread, so the engine
/// is never entered twice at once. Deleting a running job cancels it before its next step; stopping the server
/// puts the running job back in the queue for the next start.
/// </summary>
public sealed class JobRunner : IDisposable
{
    /// <summary>Share of the progress bar given to denoising; the rest is decoding and writing the files.</summary>
    private const int DenoisePercent = 95;

    private readonly IJobStore _store;
    private readonly StoreFolder _files;
    private readonly IVideoEngine _engine;
    private readonly ServerLog _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Lock _gate = new();
    private readonly Thread _thread;
    private (string Id, CancellationTokenSource Cts)? _running;

    public JobRunner(IJobStore store, StoreFolder files, IVideoEngine engine, ServerLog log)
    {
        _store = store;
        _files = files;
        _engine = engine;
        _log = log;
        _thread = new Thread(Loop) { Name = "sora job runner", IsBackground = true };
    }

    public void Start()
    {
        foreach (var id in _store.RequeueAbandoned()) _log.Job(id, JobStatus.Queued, "picked up again: the server stopped while it ran");
        _thread.Start();
    }

    /// <summary>A job was queued: look now rather than at the next poll.</summary>
    public void Wake() => _wake.Release();

    /// <summary>Cancels the job if it is the one running; its slot is free before its next step.</summary>
    public void Cancel(string id)
    {
        lock (_gate)
        {
            if (_running is { } r && r.Id == id) r.Cts.Cancel();
        }
    }

    /// <summary>Stops the loop; a running job is cancelled and queued again.</summary>
    public void Stop()
    {
        _stop.Cancel();
        if (_thread.IsAlive) _thread.Join();
    }

    private void Loop()
    {
        while (!_stop.IsCancellationRequested)
        {
            VideoJob? job;
            try
            {
                job = _store.ClaimNext();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _log.Line($"cannot read the queue: {Program.OneLine(e.Message)}");
                job = null;
            }
            if (job is null)
            {
                // New jobs wake the loop; the poll is a backstop.
                try { _wake.Wait(TimeSpan.FromSeconds(1), _stop.Token); }
                catch (OperationCanceledException) { }
                continue;
            }
            try
            {
                Run(job);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The store failed while recording the outcome; the loop (and the server) must outlive that.
                _log.Line($"{job.Id}: cannot record its state: {Program.OneLine(e.Message)}");
            }
        }
    }

    private void Run(VideoJob job)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        lock (_gate) _running = (job.Id, cts);
        var clock = Stopwatch.StartNew();
        string attempt = job.Attempts > 1 ? $", attempt {job.Attempts}" : "";
        _log.Job(job.Id, JobStatus.InProgress, $"{job.Spec.Kind.ToString().ToLowerInvariant()}, {job.Spec.Frames} frames {job.Size}, {job.Spec.Steps} steps{attempt}");
        try
        {
            var inputs = new JobInputs(
                job.Spec.Image is { } image ? VideoInput.ReadImage(_files.Resolve(image)) : null,
                job.Spec.Clip is { } clip ? VideoInput.ReadClip(_files.Resolve(clip)) : null);
            var video = _engine.Generate(job.Spec, inputs, new StepReporter(_store, job.Id), cts.Token);
            _files.WriteResult(job.Id, video, _engine.Geometry.Fps, cts.Token);
            if (_store.Complete(job.Id, DateTimeOffset.UtcNow.ToUnixTimeSeconds()))
            {
                _files.DeleteUploads(job.Id);
                _log.Job(job.Id, JobStatus.Completed, $"{clock.Elapsed.TotalSeconds:0.0} s");
            }
            else
            {
                _files.DeleteFiles(job.Id); // deleted while its files were being written
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            _store.Requeue(job.Id);
            _log.Job(job.Id, JobStatus.Queued, "the server is stopping; it runs again at the next start");
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            _files.DeleteFiles(job.Id);
            _log.Job(job.Id, "cancelled", "deleted while in progress");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The message goes to the client: the store's own paths are not its business.
            string message = Program.OneLine(e.Message).Replace(_files.Root + Path.DirectorySeparatorChar, "", StringComparison.Ordinal);
            var error = e is ArgumentException or VideoInputException or NotSupportedException
                ? new JobError("invalid_request", message)
                : new JobError("generation_failed", $"{e.GetType().Name}: {message}");
            _files.DeleteFiles(job.Id);
            if (_store.Fail(job.Id, error, DateTimeOffset.UtcNow.ToUnixTimeSeconds()))
                _log.Job(job.Id, JobStatus.Failed, error.Message);
        }
        finally
        {
            lock (_gate) _running = null;
        }
    }

    /// <summary>Step n of N → progress ⌊95·n/N⌋ in the store, written only when the percentage changes.</summary>
    private sealed class StepReporter(IJobStore store, string id) : IProgress<StepProgress>
    {
        private int _last = -1;

        public void Report(StepProgress value)
        {
            int percent = DenoisePercent * value.Step / value.TotalSteps;
            if (percent == _last) return;
            _last = percent;
            store.SetProgress(id, percent);
        }
    }

    public void Dispose()
    {
        Stop();
        _stop.Dispose();
        _wake.Dispose();
    }
}
