using System.Net;
using System.Text.Json;
using Sora.Cli;
using Sora.Cli.Serve;
using Sora.Kernels.Cpu;
using Sora.Native.Pipeline;
using Sora.Native.Video;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>Every endpoint over HTTP on loopback, with the shipped model and a few steps per video.</summary>
[Collection(ServerCollection.Name)]
public sealed class VideoApiTests(ServedModel model) : IAsyncLifetime
{
    private const string Prompt = "a red circle moving right on a blue background";
    /// <summary>A job that takes long enough (about 10 s) to be seen queued and in progress, then deleted.</summary>
    private static readonly (string, string)[] Slow = [("prompt", Prompt), ("seconds", "1"), ("steps", "200")];

    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(model.Engine);

    public Task DisposeAsync() => _server.DisposeAndDeleteStoreAsync();

    private static (string, string)[] Quick(long seed) => [("prompt", Prompt), ("seconds", "1"), ("steps", "2"), ("seed", seed.ToString())];

    [Fact]
    public async Task A_created_video_completes_with_the_frames_the_pipeline_makes_for_the_same_options()
    {
        var created = await _server.CreateAsync(("prompt", Prompt), ("seconds", "1"), ("steps", "3"), ("seed", "11"), ("model", "sora-2"));
        string id = created.GetProperty("id").GetString()!;
        Assert.StartsWith("video_", id);
        Assert.Equal("video", created.GetProperty("object").GetString());
        Assert.Equal("queued", created.GetProperty("status").GetString());
        Assert.Equal(0, created.GetProperty("progress").GetInt32());

        var video = await _server.WaitAsync(id);
        Assert.Equal("completed", video.GetProperty("status").GetString());
        Assert.Equal(100, video.GetProperty("progress").GetInt32());
        Assert.Equal("weights", video.GetProperty("model").GetString());
        Assert.Equal("1", video.GetProperty("seconds").GetString());
        Assert.Equal("32x32", video.GetProperty("size").GetString());
        Assert.Equal(Prompt, video.GetProperty("prompt").GetString());
        Assert.Equal(JsonValueKind.Null, video.GetProperty("error").ValueKind);
        Assert.Equal(JsonValueKind.Null, video.GetProperty("expires_at").ValueKind);
        Assert.Equal(JsonValueKind.Null, video.GetProperty("remixed_from_video_id").ValueKind);
        Assert.InRange(video.GetProperty("completed_at").GetInt64(), video.GetProperty("created_at").GetInt64(), DateTimeOffset.UtcNow.ToUnixTimeSeconds());

        // The same options straight through the library: the server must not change what is generated.
        using var backend = new CpuBackend();
        using var pipeline = WanPipeline.Load(ModelLocator.Resolve(null), backend);
        var direct = pipeline.Generate(pipeline.Defaults.Options(Prompt) with { Seed = 11, Steps = 3 });
        direct.Latents?.Dispose();
        var expected = direct.Video!;

        var thumbnail = await Download(id, "thumbnail", "image/png");
        var thumb = VideoInput.ReadImage(thumbnail);
        Assert.Equal((1, 32, 32), (thumb.Frames, thumb.Height, thumb.Width));
        Assert.Equal(expected.FrameBytes(0), thumb.FrameBytes(0));

        var sheet = VideoInput.ReadImage(await Download(id, "spritesheet", "image/png"));
        Assert.Equal((96, 96), (sheet.Width, sheet.Height)); // 9 frames in a 3×3 grid
        for (int f = 0; f < 9; f++)
        {
            var cell = Cell(sheet, f % 3 * 32, f / 3 * 32, 32, 32);
            Assert.Equal(expected.FrameBytes(f), cell);
        }

        var response = await _server.Http.GetAsync($"/v1/videos/{id}/content");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        string type = response.Content.Headers.ContentType!.MediaType!;
        var bytes = await response.Content.ReadAsByteArrayAsync();
        string ext = Mp4Writer.FindFfmpeg() is null ? ".gif" : ".mp4";
        Assert.Equal(ext == ".gif" ? "image/gif" : "video/mp4", type);
        var clip = VideoInput.ReadClip(Save(bytes, ext));
        Assert.Equal((9, 32, 32), (clip.Frames, clip.Height, clip.Width));
        // A GIF's 256-colour palette (or H.264) is lossy: near the frames, not equal to them.
        double meanAbs = expected.Rgb.Zip(clip.Rgb, (a, b) => (double)Math.Abs(a - b)).Average();
        Assert.InRange(meanAbs, 0, 0.03);
    }

    [Fact]
    public async Task A_JSON_body_works_and_seconds_and_size_map_to_the_nearest_the_model_takes()
    {
        var created = await TestServer.Ok(await _server.PostJsonAsync("/v1/videos", new { prompt = Prompt, seconds = "2", size = "40x24", steps = 1, seed = 3 }));
        Assert.Equal("48x32", created.GetProperty("size").GetString()); // multiples of 16
        Assert.Equal("2", created.GetProperty("seconds").GetString()); // 17 frames at 8 fps
        var video = await _server.WaitAsync(created.GetProperty("id").GetString()!);
        Assert.Equal("completed", video.GetProperty("status").GetString());
        var thumb = VideoInput.ReadImage(await Download(video.GetProperty("id").GetString()!, "thumbnail", "image/png"));
        Assert.Equal((32, 48), (thumb.Height, thumb.Width));
        var sheet = VideoInput.ReadImage(await Download(video.GetProperty("id").GetString()!, "spritesheet", "image/png"));
        Assert.Equal((4 * 32, 5 * 48), (sheet.Height, sheet.Width)); // 17 frames: 5 a row, 4 rows
    }

    public static TheoryData<string, string, string> BadFields => new()
    {
        { "seconds", "abc", "seconds" },
        { "seconds", "0", "seconds" },
        { "seconds", "-4", "seconds" },
        { "seconds", "NaN", "seconds" },
        { "seconds", "600", "seconds" },          // 4801 frames: over the frame limit
        { "size", "big", "size" },
        { "size", "0x32", "size" },
        { "size", "32x", "size" },
        { "size", "4096x4096", "size" },          // over the pixel limit
        { "steps", "0", "steps" },
        { "steps", "100000", "steps" },
        { "steps", "two", "steps" },
        { "guidance", "nan", "guidance" },
        { "guidance", "-1", "guidance" },
        { "seed", "1.5", "seed" },
        { "model", "dall-e-3", "model" },
        { "colour", "red", "colour" },            // not a parameter
        { "input_reference[file_id]", "file_123", "input_reference" },
        { "input_reference[image_url]", "https://example.com/a.png", "input_reference" },
        { "input_reference[image_url]", "data:image/png;base64,@@@", "input_reference" },
        { "input_reference", "not a file", "input_reference" },
    };

    [Theory]
    [MemberData(nameof(BadFields))]
    public async Task A_bad_field_is_a_400_naming_it(string name, string value, string param)
    {
        var response = await _server.PostFormAsync("/v1/videos", [("prompt", Prompt), (name, value)]);
        await TestServer.Error(response, 400, param);
    }

    [Fact]
    public async Task A_missing_or_overlong_prompt_is_a_400()
    {
        var error = await TestServer.Error(await _server.PostFormAsync("/v1/videos", [("seconds", "1")]), 400, "prompt");
        Assert.Equal("missing_required_parameter", error.GetProperty("code").GetString());
        await TestServer.Error(await _server.PostFormAsync("/v1/videos", [("prompt", new string('a', 4001))]), 400, "prompt");
        await TestServer.Error(await _server.PostFormAsync("/v1/videos", [("prompt", Prompt), ("negative_prompt", new string('a', 4001))]), 400, "negative_prompt");
        Assert.Equal(0, await Pending());
    }

    public static TheoryData<string, byte[]> BadImages => new()
    {
        { "text", "hello, not an image"u8.ToArray() },
        { "png signature only", [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A] },
        { "truncated png", Png(16, 16)[..40] },
        { "jpeg start only", [0xFF, 0xD8, 0xFF, 0xE0, 0, 16] },
        { "png lying about its size", LyingPng() },
    };

    [Theory]
    [MemberData(nameof(BadImages))]
    public async Task An_image_that_does_not_decode_is_a_400_and_leaves_nothing_behind(string what, byte[] bytes)
    {
        var response = await _server.PostFormAsync("/v1/videos", [("prompt", Prompt)], ("input_reference", "ref.png", bytes));
        var error = await TestServer.Error(response, 400, "input_reference");
        Assert.DoesNotContain(_server.StoreDir, error.GetProperty("message").GetString()!); // no server paths in messages
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_server.StoreDir, "uploads")));
        Assert.Equal(0, await Pending());
        _ = what;
    }

    [Fact]
    public async Task A_refusal_after_the_upload_was_saved_leaves_nothing_behind()
    {
        var response = await _server.PostFormAsync("/v1/videos", [("prompt", Prompt), ("steps", "0")], ("input_reference", "ref.png", Png(16, 16)));
        await TestServer.Error(response, 400, "steps");
        var edit = await _server.PostFormAsync("/v1/videos/edits", [("prompt", Prompt), ("strength", "2")], ("video", "clip.png", Png(16, 16)));
        await TestServer.Error(edit, 400, "strength");
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_server.StoreDir, "uploads")));
        Assert.Equal(0, await Pending());
    }

    [Fact]
    public async Task A_method_a_route_does_not_take_is_a_405_in_the_error_shape()
    {
        await TestServer.Error(await _server.Http.PutAsync("/v1/videos", new StringContent("{}")), 405);
        await TestServer.Error(await _server.Http.PostAsync("/v1/videos/video_x", new StringContent("{}")), 405);
    }

    /// <summary>Bit flips may leave a decodable image (accepted) or not (a 400): never anything else.</summary>
    [Fact]
    public async Task Images_with_flipped_bits_are_accepted_or_refused_cleanly()
    {
        var png = Png(16, 16);
        for (int seed = 0; seed < 12; seed++)
        {
            var response = await _server.PostFormAsync("/v1/videos", [("prompt", Prompt), ("steps", "1")], ("input_reference", "ref.png", FlipBits(png, seed)));
            if (response.StatusCode == HttpStatusCode.OK)
                await TestServer.Ok(await _server.Http.DeleteAsync($"/v1/videos/{(await TestServer.Ok(response)).GetProperty("id").GetString()}"));
            else
                await TestServer.Error(response, 400, "input_reference");
        }
    }

    [Fact]
    public async Task Bodies_that_are_not_forms_or_JSON_objects_are_400s()
    {
        var notJson = new StringContent("{\"prompt\": ", System.Text.Encoding.UTF8, "application/json");
        await TestServer.Error(await _server.Http.PostAsync("/v1/videos", notJson), 400);
        var array = new StringContent("[1, 2]", System.Text.Encoding.UTF8, "application/json");
        await TestServer.Error(await _server.Http.PostAsync("/v1/videos", array), 400);
        var nested = new StringContent("{\"prompt\": [\"a\"]}", System.Text.Encoding.UTF8, "application/json");
        await TestServer.Error(await _server.Http.PostAsync("/v1/videos", nested), 400, "prompt");
        var text = new StringContent("prompt=a", System.Text.Encoding.UTF8, "text/plain");
        await TestServer.Error(await _server.Http.PostAsync("/v1/videos", text), 400);
        var twice = await _server.PostFormAsync("/v1/videos", [("prompt", Prompt), ("prompt", "again")]);
        await TestServer.Error(twice, 400, "prompt");
    }

    [Fact]
    public async Task Unknown_ids_and_routes_are_404s()
    {
        await TestServer.Error(await _server.Http.GetAsync("/v1/videos/video_nope"), 404);
        await TestServer.Error(await _server.Http.DeleteAsync("/v1/videos/video_nope"), 404);
        await TestServer.Error(await _server.Http.GetAsync("/v1/videos/video_nope/content"), 404);
        await TestServer.Error(await _server.PostJsonAsync("/v1/videos/video_nope/remix", new { prompt = Prompt }), 404);
        await TestServer.Error(await _server.PostFormAsync("/v1/videos/edits", [("prompt", Prompt), ("video[id]", "video_nope")]), 404, "video");
        await TestServer.Error(await _server.Http.GetAsync("/v1/images"), 404);
    }

    [Fact]
    public async Task An_unfinished_video_has_no_content_yet_409_and_cannot_be_remixed()
    {
        var slow = await _server.CreateAsync(Slow);
        string id = slow.GetProperty("id").GetString()!;
        var error = await TestServer.Error(await _server.Http.GetAsync($"/v1/videos/{id}/content"), 409);
        Assert.Equal("video_not_ready", error.GetProperty("code").GetString());
        await TestServer.Error(await _server.Http.GetAsync($"/v1/videos/{id}/content?variant=thumbnail"), 409);
        await TestServer.Error(await _server.PostJsonAsync($"/v1/videos/{id}/remix", new { prompt = Prompt }), 409);
        await TestServer.Error(await _server.PostFormAsync("/v1/videos/extensions", [("prompt", Prompt), ("seconds", "1"), ("video[id]", id)]), 409, "video");
        await TestServer.Error(await _server.Http.GetAsync($"/v1/videos/{id}/content?variant=poster"), 400, "variant");
        await TestServer.Ok(await _server.Http.DeleteAsync($"/v1/videos/{id}"));
    }

    [Fact]
    public async Task A_body_over_the_limit_is_a_413()
    {
        var small = await TestServer.StartAsync(model.Engine, limits: new ServerLimits { MaxBodyBytes = 32 << 10 });
        try
        {
            var response = await small.PostFormAsync("/v1/videos", [("prompt", Prompt)], ("input_reference", "big.png", new byte[48 << 10]));
            await TestServer.Error(response, 413);
            var json = await small.PostJsonAsync("/v1/videos", new { prompt = new string('a', 40 << 10) });
            await TestServer.Error(json, 413);
            Assert.Equal(0, (await TestServer.Ok(await small.Http.GetAsync("/healthz"))).GetProperty("pending").GetInt32());
        }
        finally
        {
            await small.DisposeAndDeleteStoreAsync();
        }
    }

    [Fact]
    public async Task A_full_queue_is_a_429_until_a_place_frees()
    {
        var server = await TestServer.StartAsync(model.Engine, limits: new ServerLimits { MaxQueue = 2 });
        try
        {
            var first = await server.CreateAsync(Slow);
            var second = await server.CreateAsync(Slow);
            var response = await server.PostFormAsync("/v1/videos", Quick(1));
            var error = await TestServer.Error(response, 429);
            Assert.Equal("queue_full", error.GetProperty("code").GetString());
            Assert.True(response.Headers.Contains("Retry-After"));
            await TestServer.Ok(await server.Http.DeleteAsync($"/v1/videos/{second.GetProperty("id").GetString()}"));
            await server.CreateAsync(Quick(1));
            await TestServer.Ok(await server.Http.DeleteAsync($"/v1/videos/{first.GetProperty("id").GetString()}"));
        }
        finally
        {
            await server.DisposeAndDeleteStoreAsync();
        }
    }

    [Fact]
    public async Task With_an_API_key_every_request_needs_the_bearer_key()
    {
        var server = await TestServer.StartAsync(model.Engine, apiKey: "sk-test-key");
        try
        {
            using var anonymous = new HttpClient { BaseAddress = new Uri(server.Url) };
            var error = await TestServer.Error(await anonymous.GetAsync("/v1/videos"), 401);
            Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
            await TestServer.Error(await anonymous.GetAsync("/healthz"), 401);
            foreach (var header in new[] { "Bearer sk-test-kez", "Bearer sk-test-key2", "Bearer ", "Basic sk-test-key", "sk-test-key" })
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/videos");
                request.Headers.TryAddWithoutValidation("Authorization", header);
                await TestServer.Error(await anonymous.SendAsync(request), 401);
            }
            await TestServer.Error(await anonymous.PostAsync("/v1/videos", new StringContent("{}")), 401);
            var list = await TestServer.Ok(await server.Http.GetAsync("/v1/videos"));
            Assert.Equal("list", list.GetProperty("object").GetString());
            Assert.Equal("ok", (await TestServer.Ok(await server.Http.GetAsync("/healthz"))).GetProperty("status").GetString());
        }
        finally
        {
            await server.DisposeAndDeleteStoreAsync();
        }
    }

    [Fact]
    public async Task The_list_pages_by_cursor_in_either_order()
    {
        var ids = new List<string>();
        for (int i = 0; i < 3; i++) ids.Add((await _server.CreateAsync(Quick(i))).GetProperty("id").GetString()!);

        var page = await List("?limit=2");
        Assert.Equal("list", page.GetProperty("object").GetString());
        Assert.Equal([ids[2], ids[1]], Ids(page));
        Assert.True(page.GetProperty("has_more").GetBoolean());
        Assert.Equal(ids[2], page.GetProperty("first_id").GetString());
        Assert.Equal(ids[1], page.GetProperty("last_id").GetString());
        var next = await List($"?limit=2&after={ids[1]}");
        Assert.Equal([ids[0]], Ids(next));
        Assert.False(next.GetProperty("has_more").GetBoolean());
        Assert.Equal(ids, Ids(await List("?order=asc")));
        Assert.Equal([ids[1], ids[2]], Ids(await List($"?order=asc&after={ids[0]}&limit=5")));
        var empty = await List($"?order=asc&after={ids[2]}");
        Assert.Empty(Ids(empty));
        Assert.Equal(JsonValueKind.Null, empty.GetProperty("first_id").ValueKind);

        await TestServer.Error(await _server.Http.GetAsync("/v1/videos?limit=0"), 400, "limit");
        await TestServer.Error(await _server.Http.GetAsync("/v1/videos?limit=101"), 400, "limit");
        await TestServer.Error(await _server.Http.GetAsync("/v1/videos?limit=x"), 400, "limit");
        await TestServer.Error(await _server.Http.GetAsync("/v1/videos?order=sideways"), 400, "order");
        await TestServer.Error(await _server.Http.GetAsync("/v1/videos?after=video_nope"), 400, "after");
        foreach (var id in ids) await _server.WaitAsync(id);
    }

    [Fact]
    public async Task Deleting_a_finished_video_removes_it_and_its_files()
    {
        string id = (await _server.CreateAsync(Quick(5))).GetProperty("id").GetString()!;
        await _server.WaitAsync(id);
        string dir = Path.Combine(_server.StoreDir, "videos", id);
        Assert.True(Directory.Exists(dir));
        var deleted = await TestServer.Ok(await _server.Http.DeleteAsync($"/v1/videos/{id}"));
        Assert.Equal(id, deleted.GetProperty("id").GetString());
        Assert.Equal("video.deleted", deleted.GetProperty("object").GetString());
        Assert.True(deleted.GetProperty("deleted").GetBoolean());
        Assert.False(Directory.Exists(dir));
        await TestServer.Error(await _server.Http.GetAsync($"/v1/videos/{id}"), 404);
        await TestServer.Error(await _server.Http.GetAsync($"/v1/videos/{id}/content"), 404);
        Assert.Equal(1, _server.Log.Count(id, "deleted"));
    }

    [Fact]
    public async Task Deleting_a_video_in_progress_cancels_it_and_frees_the_runner()
    {
        string slow = (await _server.CreateAsync(Slow)).GetProperty("id").GetString()!;
        string next = (await _server.CreateAsync(Quick(6))).GetProperty("id").GetString()!;
        await _server.WaitAsync(slow, v => v.GetProperty("progress").GetInt32() > 0);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await TestServer.Ok(await _server.Http.DeleteAsync($"/v1/videos/{slow}"));
        var done = await _server.WaitAsync(next);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        // The two share the runner's passes; the slow one leaves at the pass after its delete.
        while (_server.Log.Count(slow, "cancelled") == 0 && clock.Elapsed.TotalSeconds < 8) await Task.Delay(20);
        Assert.InRange(clock.Elapsed.TotalSeconds, 0, 8); // the slow job alone would take about 10 s more
        Assert.Equal(1, _server.Log.Count(slow, "cancelled"));
        Assert.Equal(0, _server.Log.Count(slow, "completed"));
        Assert.False(Directory.Exists(Path.Combine(_server.StoreDir, "videos", slow)));
        Assert.False(Directory.Exists(Path.Combine(_server.StoreDir, "uploads", slow)));
    }

    [Fact]
    public async Task A_job_that_cannot_run_fails_with_an_error_the_client_sees()
    {
        string slow = (await _server.CreateAsync(Slow)).GetProperty("id").GetString()!;
        var response = await _server.PostFormAsync("/v1/videos", Quick(9), ("input_reference", "ref.png", Png(16, 16)));
        string id = (await TestServer.Ok(response)).GetProperty("id").GetString()!;
        // Its input disappears while it waits (a disk problem, say): the run cannot read it.
        Directory.Delete(Path.Combine(_server.StoreDir, "uploads", id), recursive: true);
        await TestServer.Ok(await _server.Http.DeleteAsync($"/v1/videos/{slow}"));

        var video = await _server.WaitAsync(id);
        Assert.Equal("failed", video.GetProperty("status").GetString());
        var error = video.GetProperty("error");
        Assert.Equal("invalid_request", error.GetProperty("code").GetString());
        Assert.Contains("input.png", error.GetProperty("message").GetString());
        Assert.DoesNotContain(_server.StoreDir, error.GetProperty("message").GetString()!);
        Assert.Equal(JsonValueKind.Number, video.GetProperty("completed_at").ValueKind);
        await TestServer.Error(await _server.Http.GetAsync($"/v1/videos/{id}/content"), 409);
        Assert.Equal(1, _server.Log.Count(id, "failed"));
        // The runner goes on with the next job.
        Assert.Equal("completed", (await _server.WaitAsync((await _server.CreateAsync(Quick(10))).GetProperty("id").GetString()!)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Every_state_change_is_one_log_line()
    {
        string id = (await _server.CreateAsync(Quick(8))).GetProperty("id").GetString()!;
        await _server.WaitAsync(id);
        var lines = _server.Log.Lines.Where(l => l.Contains(id, StringComparison.Ordinal)).ToList();
        Assert.Equal(3, lines.Count);
        Assert.Contains(" queued ", lines[0]);
        Assert.Contains(" in_progress ", lines[1]);
        Assert.Contains(" completed ", lines[2]);
    }

    private async Task<int> Pending() => (await TestServer.Ok(await _server.Http.GetAsync("/healthz"))).GetProperty("pending").GetInt32();

    private async Task<JsonElement> List(string query) => await TestServer.Ok(await _server.Http.GetAsync("/v1/videos" + query));

    private static List<string> Ids(JsonElement page) => page.GetProperty("data").EnumerateArray().Select(v => v.GetProperty("id").GetString()!).ToList();

    private async Task<string> Download(string id, string variant, string contentType)
    {
        var response = await _server.Http.GetAsync($"/v1/videos/{id}/content?variant={variant}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(contentType, response.Content.Headers.ContentType!.MediaType);
        return Save(await response.Content.ReadAsByteArrayAsync(), ".png");
    }

    private string Save(byte[] bytes, string ext)
    {
        string path = Path.Combine(_server.StoreDir, "downloaded-" + Guid.NewGuid().ToString("N") + ext);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Cell(VideoFrames image, int x0, int y0, int width, int height)
    {
        var all = image.FrameBytes(0);
        var cell = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            Array.Copy(all, ((y0 + y) * image.Width + x0) * 3, cell, y * width * 3, width * 3);
        return cell;
    }

    /// <summary>A valid PNG of noise (the input of the image tests).</summary>
    public static byte[] Png(int width, int height, int seed = 1)
    {
        var rgb = new byte[width * height * 3];
        new Random(seed).NextBytes(rgb);
        using var s = new MemoryStream();
        PngWriter.WriteImage(s, rgb, width, height);
        return s.ToArray();
    }

    private static byte[] FlipBits(byte[] bytes, int seed)
    {
        var copy = (byte[])bytes.Clone();
        var rng = new Random(seed);
        // Past the signature and IHDR, into the compressed data, where a flip breaks the zlib stream or its CRC.
        for (int i = 0; i < 8; i++) copy[rng.Next(41, copy.Length - 12)] ^= (byte)(1 << rng.Next(8));
        return copy;
    }

    /// <summary>A PNG header claiming 100000×100000 pixels over a few bytes of data.</summary>
    private static byte[] LyingPng()
    {
        var png = Png(4, 4);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), 100_000);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), 100_000);
        return png;
    }
}
