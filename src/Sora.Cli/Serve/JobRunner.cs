using System.Diagnostics;
using Sora.Native.Pipeline;
using Sora.Native.Video;

namespace Sora.Cli.Serve;

/// <summary>
/// The loop that owns the device, with continuous batching: every job in flight advances one denoising step per pass,
/// all of them packed into one transformer pass (<see cref="IVideoEngine.Step"/>); a queued job joins at the next
/// pass while the pass stays within the token budget (<see cref="ServerLimits.MaxBatchTokens"/>; a job larger than the
/// budget runs alone), and a finished one leaves to be decoded and written. It runs on one dedicated thread, so the
/// engine is never entered twice at once. Deleting a running job cancels it: its slot is free at the next pass.
/// Stopping the server puts every job in flight back in the queue for the next start.
/// </summary>
public sealed class JobRunner : IDisposable
{
    /// <summary>Share of the progress bar given to denoising; the rest is decoding and writing the files.</summary>
    private const int DenoisePercent = 95;

    private readonly IJobStore _store;
    private readonly StoreFolder _files;
    private readonly IVideoEngine _engine;
    private readonly ServerLog _log;
    private readonly int _maxBatchTokens;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Lock _gate = new();
    private readonly Thread _thread;
    private readonly List<Running> _running = new();
    private VideoJob? _next; // claimed, waiting for room in the pass

    public JobRunner(IJobStore store, StoreFolder files, IVideoEngine engine, ServerLog log, int maxBatchTokens = int.MaxValue)
    {
        _store = store;
        _files = files;
        _engine = engine;
        _log = log;
        _maxBatchTokens = maxBatchTokens;
        _thread = new Thread(Loop) { Name = "sora job runner", IsBackground = true };
    }

    public void Start()
    {
        foreach (var id in _store.RequeueAbandoned()) _log.Job(id, JobStatus.Queued, "picked up again: the server stopped while it ran");
        _thread.Start();
    }

    /// <summary>A job was queued: look now rather than at the next poll.</summary>
    public void Wake() => _wake.Release();

    /// <summary>Cancels the job if it is running; its slot is free at the next pass.</summary>
    public void Cancel(string id)
    {
        lock (_gate)
        {
            foreach (var r in _running)
                if (r.Job.Id == id) r.Cts.Cancel();
        }
    }

    /// <summary>Stops the loop; the jobs in flight are cancelled and queued again.</summary>
    public void Stop()
    {
        _stop.Cancel();
        if (_thread.IsAlive) _thread.Join();
    }

    /// <summary>A job in flight: its engine work, its cancellation and its clock.</summary>
    private sealed record Running(VideoJob Job, CancellationTokenSource Cts, IEngineJob Work, Stopwatch Clock);

    private void Loop()
    {
        try
        {
            bool busy = false;
            while (!_stop.IsCancellationRequested)
            {
                Admit();
                if (_running.Count == 0)
                {
                    if (busy) _engine.Idle();
                    busy = false;
                    // New jobs wake the loop; the poll is a backstop.
                    try { _wake.Wait(TimeSpan.FromSeconds(1), _stop.Token); }
                    catch (OperationCanceledException) { }
                    continue;
                }
                busy = true;
                DropCancelled();
                if (_running.Count == 0) continue;
                StepAll();
                FinishDone();
            }
        }
        finally
        {
            Requeue();
        }
    }

    /// <summary>Claims queued jobs while the next pass has room (always at least one) and begins them together.</summary>
    private void Admit()
    {
        int used = _running.Sum(r => r.Work.PassTokens);
        var admitted = new List<VideoJob>();
        while (!_stop.IsCancellationRequested)
        {
            if (_next is null)
            {
                try { _next = _store.ClaimNext(); }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    _log.Line($"cannot read the queue: {Program.OneLine(e.Message)}");
                    break;
                }
                if (_next is null) break;
            }
            var job = _next;
            int tokens = _engine.PassTokens(job.Spec);
            if ((_running.Count > 0 || admitted.Count > 0) && used + tokens > _maxBatchTokens) break; // it joins when a job leaves
            _next = null;
            admitted.Add(job);
            used += tokens;
        }
        if (admitted.Count > 0) Begin(admitted);
    }

    /// <summary>Begins the admitted jobs in one engine call; a job whose inputs or request are bad fails alone.</summary>
    private void Begin(IReadOnlyList<VideoJob> jobs)
    {
        var starts = new List<(VideoJob Job, CancellationTokenSource Cts, Stopwatch Clock, JobStart Start)>();
        foreach (var job in jobs)
        {
            var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            string attempt = job.Attempts > 1 ? $", attempt {job.Attempts}" : "";
            _log.Job(job.Id, JobStatus.InProgress, $"{job.Spec.Kind.ToString().ToLowerInvariant()}, {job.Spec.Frames} frames {job.Size}, {job.Spec.Steps} steps{attempt}");
            var clock = Stopwatch.StartNew();
            try
            {
                var inputs = new JobInputs(
                    job.Spec.Image is { } image ? VideoInput.ReadImage(_files.Resolve(image)) : null,
                    job.Spec.Clip is { } clip ? VideoInput.ReadClip(_files.Resolve(clip)) : null);
                starts.Add((job, cts, clock, new JobStart(job.Spec, inputs, new StepReporter(_store, job.Id))));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                cts.Dispose();
                Failed(job, e);
            }
        }
        if (starts.Count == 0) return;
        IReadOnlyList<Begun> begun;
        try
        {
            begun = _engine.Begin(starts.Select(s => s.Start).ToList());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            begun = starts.Select(_ => new Begun(null, e)).ToList();
        }
        for (int i = 0; i < starts.Count; i++)
        {
            var (job, cts, clock, _) = starts[i];
            if (begun[i].Job is { } work)
            {
                lock (_gate) _running.Add(new Running(job, cts, work, clock));
                continue;
            }
            cts.Dispose();
            Failed(job, begun[i].Error ?? new InvalidOperationException("the engine began nothing and gave no reason"));
        }
    }

    /// <summary>Jobs deleted while in flight leave the pass (their files go).</summary>
    private void DropCancelled()
    {
        foreach (var r in _running.Where(r => r.Cts.IsCancellationRequested && !_stop.IsCancellationRequested).ToList())
        {
            Leave(r);
            Recorded(r.Job, () =>
            {
                _files.DeleteFiles(r.Job.Id);
                _log.Job(r.Job.Id, "cancelled", "deleted while in progress");
            });
        }
    }

    /// <summary>One packed pass; if it fails, every job in it fails with the error (which one caused it cannot be told).</summary>
    private void StepAll()
    {
        try
        {
            _engine.Step(_running.Select(r => r.Work).ToList());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            foreach (var r in _running.ToList())
            {
                Leave(r);
                Failed(r.Job, e);
            }
        }
    }

    /// <summary>
    /// The jobs that finished at this pass are decoded together, then written and marked completed one after another;
    /// if the decode fails, every one of them fails with the error.
    /// </summary>
    private void FinishDone()
    {
        var done = _running.Where(r => r.Work.IsFinished).ToList();
        if (done.Count == 0) return;
        lock (_gate) _running.RemoveAll(done.Contains);
        IReadOnlyList<VideoFrames> videos;
        try
        {
            videos = _engine.Finish(done.Select(r => r.Work).ToList());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            foreach (var r in done)
            {
                Failed(r.Job, e);
                r.Work.Dispose();
                r.Cts.Dispose();
            }
            return;
        }
        for (int i = 0; i < done.Count; i++)
        {
            var (r, video) = (done[i], videos[i]);
            try
            {
                _files.WriteResult(r.Job.Id, video, _engine.Geometry.Fps, r.Cts.Token);
                Recorded(r.Job, () =>
                {
                    if (_store.Complete(r.Job.Id, DateTimeOffset.UtcNow.ToUnixTimeSeconds()))
                    {
                        _files.DeleteUploads(r.Job.Id);
                        _log.Job(r.Job.Id, JobStatus.Completed, $"{r.Clock.Elapsed.TotalSeconds:0.0} s");
                    }
                    else
                    {
                        _files.DeleteFiles(r.Job.Id); // deleted while its files were being written
                    }
                });
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                Recorded(r.Job, () => _store.Requeue(r.Job.Id));
            }
            catch (OperationCanceledException)
            {
                Recorded(r.Job, () => _files.DeleteFiles(r.Job.Id));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Failed(r.Job, e);
            }
            finally
            {
                r.Work.Dispose();
                r.Cts.Dispose();
            }
        }
    }

    private void Leave(Running r)
    {
        lock (_gate) _running.Remove(r);
        r.Work.Dispose();
        r.Cts.Dispose();
    }

    /// <summary>At the end of the loop: every job in flight, and a claimed one waiting, back in the queue.</summary>
    private void Requeue()
    {
        foreach (var r in _running.ToList())
        {
            Leave(r);
            Recorded(r.Job, () =>
            {
                _store.Requeue(r.Job.Id);
                _log.Job(r.Job.Id, JobStatus.Queued, "the server is stopping; it runs again at the next start");
            });
        }
        if (_next is { } waiting) Recorded(waiting, () => _store.Requeue(waiting.Id));
        _next = null;
    }

    private void Failed(VideoJob job, Exception e)
    {
        // The message goes to the client: the store's own paths are not its business.
        string message = Program.OneLine(e.Message).Replace(_files.Root + Path.DirectorySeparatorChar, "", StringComparison.Ordinal);
        var error = e is ArgumentException or VideoInputException or NotSupportedException
            ? new JobError("invalid_request", message)
            : new JobError("generation_failed", $"{e.GetType().Name}: {message}");
        Recorded(job, () =>
        {
            _files.DeleteFiles(job.Id);
            if (_store.Fail(job.Id, error, DateTimeOffset.UtcNow.ToUnixTimeSeconds()))
                _log.Job(job.Id, JobStatus.Failed, error.Message);
        });
    }

    /// <summary>Records a job's outcome; the store failing then is logged and the loop (and the server) goes on.</summary>
    private void Recorded(VideoJob job, Action record)
    {
        try { record(); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.Line($"{job.Id}: cannot record its state: {Program.OneLine(e.Message)}");
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
