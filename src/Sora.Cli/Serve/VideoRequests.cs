using System.Globalization;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Sora.Native.Video;

namespace Sora.Cli.Serve;

/// <summary>
/// Turns the bodies of create, remix, edits and extensions into queued jobs: every field checked against the
/// model and the limits, uploads saved into the job's folder and decoded once (an image or clip that does not
/// decode is a 400 now, not a failed job later), a finished source video's frames copied so the job stands alone.
/// </summary>
public sealed class VideoRequests(IVideoEngine engine, IJobStore store, StoreFolder files, ServerLimits limits)
{
    /// <summary>Our fields beyond OpenAI's, accepted by every endpoint (remix and edits take strength too).</summary>
    private static readonly string[] Extras = ["negative_prompt", "seed", "steps", "guidance"];

    private ClipGeometry Geometry => engine.Geometry;

    public static string NewId() => "video_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>POST /v1/videos: prompt, model, seconds, size, input_reference (an image upload or a data URL).</summary>
    public Task<VideoJob> CreateAsync(RequestFields f, CancellationToken ct) => AcceptAsync(async id =>
    {
        f.OnlyKnown(["prompt", "model", "seconds", "size", "input_reference", "input_reference[image_url]", "input_reference[file_id]", .. Extras]);
        CheckModel(f);
        int frames = f.String("seconds") is { } s ? Geometry.FramesFor(Seconds(s, "seconds")) : Geometry.DefaultFrames;
        var (width, height) = Size(f);
        var image = await SaveImageAsync(f, id, ct);
        // Without a size, an image gives its own aspect ratio (at the model's pixel count), as sora generate --image does.
        if (image is { } i && f.String("size") is null) (width, height) = CheckPixels(engine.SizeFor(i.Width, i.Height), "input_reference");
        return Add(f, id, new JobSpec { Kind = JobKind.Create, Frames = frames, Width = width, Height = height, Image = image?.Path }, remixedFrom: null);
    });

    /// <summary>POST /v1/videos/{id}/remix: a new prompt over a finished video, at its size and length.</summary>
    public Task<VideoJob> RemixAsync(string sourceId, RequestFields f) => AcceptAsync(id =>
    {
        f.OnlyKnown(["prompt", "strength", .. Extras]);
        var source = Finished(sourceId, param: null);
        string clip = CopySourceFrames(source, id);
        int frames = source.Spec.TotalFrames;
        return Task.FromResult(Add(f, id, new JobSpec
        {
            Kind = JobKind.Remix, Frames = frames, Width = source.Spec.Width, Height = source.Spec.Height, Clip = clip, ClipFrames = frames,
            Strength = f.Double("strength", 0, 1),
        }, remixedFrom: source.Id));
    });

    /// <summary>POST /v1/videos/edits: prompt, video (an uploaded clip, or video[id] of a finished video).</summary>
    public Task<VideoJob> EditAsync(RequestFields f, CancellationToken ct) => AcceptAsync(async id =>
    {
        f.OnlyKnown(["prompt", "video", "video[id]", "strength", .. Extras]);
        var (clip, clipFrames, width, height, sourceId) = await SourceClipAsync(f, id, ct);
        // The longest 4k+1 start of the clip: the frames the model can take.
        int frames = (clipFrames - 1) / Geometry.FrameStep * Geometry.FrameStep + 1;
        return Add(f, id, new JobSpec
        {
            Kind = JobKind.Edit, Frames = frames, Width = width, Height = height, Clip = clip, ClipFrames = clipFrames,
            Strength = f.Double("strength", 0, 1),
        }, sourceId);
    });

    /// <summary>POST /v1/videos/extensions: prompt, seconds (of the new part), video (upload or video[id]).</summary>
    public Task<VideoJob> ExtendAsync(RequestFields f, CancellationToken ct) => AcceptAsync(async id =>
    {
        f.OnlyKnown(["prompt", "seconds", "video", "video[id]", .. Extras]);
        // The new part: 4k frames for the seconds asked (FramesFor counts the first frame too).
        int added = Geometry.FramesFor(Seconds(f.Required("seconds"), "seconds")) - 1;
        var (clip, clipFrames, width, height, sourceId) = await SourceClipAsync(f, id, ct);
        // The model starts from the clip's last frames: the default count, or all of a shorter clip's 4k+1.
        int known = Math.Min(engine.DefaultExtendFrames, (clipFrames - 1) / Geometry.FrameStep * Geometry.FrameStep + 1);
        return Add(f, id, new JobSpec
        {
            Kind = JobKind.Extend, Frames = known + added, Width = width, Height = height, Clip = clip, ClipFrames = clipFrames, ExtendFrames = known,
        }, sourceId);
    });

    /// <summary>Runs <paramref name="accept"/> for a new id; a refusal at any point removes what it saved in the id's upload folder.</summary>
    private async Task<VideoJob> AcceptAsync(Func<string, Task<VideoJob>> accept)
    {
        string id = NewId();
        try
        {
            return await accept(id);
        }
        catch
        {
            files.DeleteUploads(id);
            throw;
        }
    }

    /// <summary>The common fields, then the job into the queue (429 when it is full).</summary>
    private VideoJob Add(RequestFields f, string id, JobSpec partial, string? remixedFrom)
    {
        var spec = partial with
        {
            Prompt = Prompt(f.Required("prompt"), "prompt"),
            NegativePrompt = f.String("negative_prompt") is { } n ? Prompt(n, "negative_prompt") : null,
            Steps = f.Int("steps", 1, limits.MaxSteps) ?? engine.DefaultSteps,
            Guidance = f.Double("guidance", 0, 100) ?? engine.DefaultGuidance,
            Seed = f.Long("seed") ?? Random.Shared.NextInt64(),
        };
        double strength = spec.Strength ?? engine.DefaultStrength;
        if (spec.Kind is JobKind.Remix or JobKind.Edit && (int)(spec.Steps * strength) < 1)
            throw ApiError.BadRequest($"'strength' {strength.ToString(CultureInfo.InvariantCulture)} of {spec.Steps} steps runs no step; raise the strength or the steps.", "strength");
        int totalFrames = spec.TotalFrames;
        if (totalFrames > limits.MaxFrames)
            throw ApiError.BadRequest($"{totalFrames} frames ({Geometry.SecondsFor(totalFrames)} s at {Geometry.Fps} fps) is more than the limit of {limits.MaxFrames}.", "seconds");
        var job = new VideoJob
        {
            Id = id,
            Status = JobStatus.Queued,
            CreatedAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            Model = engine.ModelId,
            Prompt = spec.Prompt,
            Seconds = Geometry.SecondsFor(totalFrames),
            Size = ClipGeometry.SizeString(spec.Width, spec.Height),
            RemixedFromVideoId = remixedFrom,
            Spec = spec,
        };
        if (!store.TryAdd(job, limits.MaxQueue)) throw ApiError.QueueFull(limits.MaxQueue);
        return job;
    }

    /// <summary>Any sora-* name (what OpenAI clients send) or the served model's name; nothing else is served here.</summary>
    private void CheckModel(RequestFields f)
    {
        if (f.String("model") is { } m && m != engine.ModelId && !m.StartsWith("sora-", StringComparison.Ordinal))
            throw ApiError.BadRequest($"Model '{RequestFields.Clip(m)}' is not served here; this server runs '{engine.ModelId}' (sora-* names are taken as it).", "model", "model_not_found");
    }

    private string Prompt(string text, string param)
    {
        if (text.Length > limits.MaxPromptChars)
            throw ApiError.BadRequest($"'{param}' is {text.Length} characters, more than the limit of {limits.MaxPromptChars}.", param, "string_above_max_length");
        return text;
    }

    private static double Seconds(string s, string param)
    {
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v) || v <= 0 || v > 3600)
            throw ApiError.BadRequest($"'{param}' must be a positive number of seconds, got '{RequestFields.Clip(s)}'.", param);
        return v;
    }

    /// <summary>"WxH" → the nearest size the model takes (its default size when absent), within the pixel limit.</summary>
    private (int Width, int Height) Size(RequestFields f)
    {
        if (f.String("size") is not { } s) return (Geometry.DefaultWidth, Geometry.DefaultHeight);
        var parts = s.Split('x');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int w)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int h) || w < 1 || h < 1)
            throw ApiError.BadRequest($"'size' must be WIDTHxHEIGHT in pixels (e.g. 1280x720), got '{RequestFields.Clip(s)}'.", "size");
        return CheckPixels(Geometry.SizeFor(w, h), "size");
    }

    private (int Width, int Height) CheckPixels((int Width, int Height) size, string param)
    {
        if ((long)size.Width * size.Height > limits.MaxPixels)
            throw ApiError.BadRequest($"{size.Width}x{size.Height} is more than the limit of {limits.MaxPixels} pixels a frame.", param);
        return size;
    }

    /// <summary>The input_reference image saved as the job's upload, with its size; null when none was given.</summary>
    private async Task<(string Path, int Width, int Height)?> SaveImageAsync(RequestFields f, string id, CancellationToken ct)
    {
        if (f.Has("input_reference[file_id]"))
            throw ApiError.BadRequest("input_reference.file_id is not supported here: upload the image, or give a data URL as image_url.", "input_reference", "unsupported_parameter");
        byte[]? bytes = null;
        if (f.File("input_reference") is { } upload) bytes = await ReadUploadAsync(upload, ct);
        else if (f.String("input_reference") is not null)
            throw ApiError.BadRequest("input_reference must be an image file upload (or input_reference[image_url] a data URL).", "input_reference");
        else if (f.String("input_reference[image_url]") is { } url) bytes = DataUrl(url);
        if (bytes is null) return null;
        string ext = Sniff(bytes) is { } e && e is ".png" or ".jpg" or ".gif" ? e
            : throw ApiError.BadRequest("input_reference is not a PNG, JPEG or GIF image.", "input_reference", "invalid_image");
        string path = Save(id, "input" + ext, bytes);
        try
        {
            var image = VideoInput.ReadImage(path);
            return (files.Relative(path), image.Width, image.Height);
        }
        catch (VideoInputException ex)
        {
            throw ApiError.BadRequest($"input_reference: {Problem(ex)}", "input_reference", "invalid_image");
        }
    }

    /// <summary>
    /// The clip of an edit or extension: an upload (made at its aspect ratio, as sora generate --video does), or
    /// video[id] of a finished video (at its size); with its frame count and the size to make.
    /// </summary>
    private async Task<(string Clip, int Frames, int Width, int Height, string? SourceId)> SourceClipAsync(RequestFields f, string id, CancellationToken ct)
    {
        if (f.String("video[id]") is { } sourceId)
        {
            if (f.Has("video")) throw ApiError.BadRequest("Give either a video upload or video[id], not both.", "video");
            var source = Finished(sourceId, "video");
            return (CopySourceFrames(source, id), source.Spec.TotalFrames, source.Spec.Width, source.Spec.Height, source.Id);
        }
        if (f.File("video") is not { } upload)
            throw ApiError.BadRequest(f.Has("video") ? "'video' must be a clip file upload or video[id]." : "Missing required parameter: 'video'.", "video", "missing_required_parameter");
        byte[] bytes = await ReadUploadAsync(upload, ct);
        string ext = Sniff(bytes) ?? throw ApiError.BadRequest("video is not a clip this server reads (.gif, .y4m, .png, .jpg, or .mp4/.webm with ffmpeg).", "video", "invalid_video");
        // The largest video the server makes is its budget for what an upload may decode to.
        long budget = limits.MaxFrames * limits.MaxPixels;
        if (ext == ".gif" && UploadBudget.GifPixels(bytes) is { } pixels && pixels > budget)
            throw ApiError.BadRequest($"The clip decodes to {pixels} pixels (frames × width × height), more than the limit of {budget}.", "video", "video_too_large");
        string path = Save(id, "clip" + ext, bytes);
        VideoFrames clip;
        try
        {
            clip = VideoInput.ReadClip(path);
        }
        catch (VideoInputException ex)
        {
            throw ApiError.BadRequest($"video: {Problem(ex)}", "video", "invalid_video");
        }
        var (width, height) = CheckPixels(engine.SizeFor(clip.Width, clip.Height), "video");
        if (clip.Frames > limits.MaxFrames)
            throw ApiError.BadRequest($"The clip has {clip.Frames} frames, more than the limit of {limits.MaxFrames}.", "video");
        return (files.Relative(path), clip.Frames, width, height, null);
    }

    /// <summary>A finished video by id: 404 when there is none, 409 when it has not completed.</summary>
    private VideoJob Finished(string id, string? param)
    {
        var job = store.Get(id) ?? throw ApiError.NotFound(id, param);
        if (job.Status != JobStatus.Completed) throw ApiError.NotCompleted(job, param);
        return job;
    }

    /// <summary>Copies a finished video's PNG frames into the new job's upload folder.</summary>
    private string CopySourceFrames(VideoJob source, string id)
    {
        string from = Path.Combine(files.VideoDir(source.Id), StoreFolder.FramesName);
        string to = Path.Combine(files.UploadDir(id), "source");
        Directory.CreateDirectory(to);
        try
        {
            foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Deleted between the look-up and the copy.
            throw ApiError.NotFound(source.Id);
        }
        return files.Relative(to);
    }

    private string Save(string id, string name, byte[] bytes)
    {
        string dir = files.UploadDir(id);
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static async Task<byte[]> ReadUploadAsync(IFormFile file, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        await file.CopyToAsync(buffer, ct);
        if (buffer.Length == 0) throw ApiError.BadRequest($"'{file.Name}' is an empty file.", file.Name);
        return buffer.ToArray();
    }

    /// <summary>The bytes of a base64 data URL (<c>data:image/png;base64,…</c>); other URLs are not fetched.</summary>
    private static byte[] DataUrl(string url)
    {
        const string param = "input_reference";
        if (!url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
            throw ApiError.BadRequest("input_reference.image_url must be a base64 data URL; this server fetches no URLs.", param, "unsupported_parameter");
        int comma = url.IndexOf(',');
        if (comma < 0 || !url[..comma].EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
            throw ApiError.BadRequest("input_reference.image_url must be a base64 data URL (data:image/png;base64,...).", param, "invalid_image");
        try
        {
            return Convert.FromBase64String(url[(comma + 1)..]);
        }
        catch (FormatException)
        {
            throw ApiError.BadRequest("input_reference.image_url holds invalid base64.", param, "invalid_image");
        }
    }

    /// <summary>The extension a file's first bytes say it has (PNG, JPEG, GIF, Y4M, MP4/MOV, WebM/MKV); null for anything else.</summary>
    private static string? Sniff(ReadOnlySpan<byte> b)
    {
        if (b.Length >= 4 && b[0] == 0x89 && b[1..4].SequenceEqual("PNG"u8)) return ".png";
        if (b.Length >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return ".jpg";
        if (b.StartsWith("GIF8"u8)) return ".gif";
        if (b.StartsWith("YUV4MPEG2"u8)) return ".y4m";
        if (b.Length >= 8 && b[4..8].SequenceEqual("ftyp"u8)) return ".mp4";
        if (b.Length >= 4 && b[0] == 0x1A && b[1] == 0x45 && b[2] == 0xDF && b[3] == 0xA3) return ".webm";
        return null;
    }

    /// <summary>A reader's message without the server's own path in it.</summary>
    private static string Problem(VideoInputException e) => e.Message.StartsWith(e.Path + ": ", StringComparison.Ordinal) ? e.Message[(e.Path.Length + 2)..] : e.Message;
}
