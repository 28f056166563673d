using System.Text.Json;
using Sora.Cli;
using Sora.Kernels.Cpu;
using Sora.Native.Pipeline;
using Sora.Native.Video;
using Sora.Tests.Video;
using Xunit;

namespace Sora.Tests.Server;

/// <summary>
/// Image to video, remix, edits and extensions through the server, each checked against the library run with the
/// same inputs and seed (the server must hand the pipeline exactly the conditioning the request asked for).
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class ConditioningTests(ServedModel model) : IAsyncLifetime
{
    private const string Prompt = "a yellow square moving up on a black background";

    private TestServer _server = null!;
    private CpuBackend _backend = null!;
    private WanPipeline _pipeline = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(model.Engine);
        _backend = new CpuBackend();
        _pipeline = WanPipeline.Load(ModelLocator.Resolve(null), _backend);
    }

    public async Task DisposeAsync()
    {
        _pipeline.Dispose();
        _backend.Dispose();
        await _server.DisposeAndDeleteStoreAsync();
    }

    [Fact]
    public async Task An_input_reference_image_makes_image_to_video()
    {
        var png = VideoApiTests.Png(48, 32, seed: 3);
        var response = await _server.PostFormAsync("/v1/videos", [("prompt", Prompt), ("seconds", "1"), ("steps", "3"), ("seed", "21")], ("input_reference", "ref.png", png));
        var created = await TestServer.Ok(response);
        var (w, h) = _pipeline.SizeFor(48, 32); // no size asked: the image's aspect ratio
        Assert.Equal($"{w}x{h}", created.GetProperty("size").GetString());
        var done = await Finished(created);

        var image = VideoInput.ReadImage(Save(png, ".png"));
        var expected = Direct(_pipeline.Defaults.Options(Prompt) with { Seed = 21, Steps = 3, Width = w, Height = h, Image = image });
        AssertSameFrames(expected, Frames(done));
    }

    [Fact]
    public async Task An_input_reference_data_url_in_JSON_works_like_an_upload()
    {
        var png = VideoApiTests.Png(32, 32, seed: 4);
        var body = new Dictionary<string, object>
        {
            ["prompt"] = Prompt, ["seconds"] = "1", ["steps"] = 2, ["seed"] = 5, ["size"] = "32x32",
            ["input_reference"] = new { image_url = "data:image/png;base64," + Convert.ToBase64String(png) },
        };
        var done = await Finished(await TestServer.Ok(await _server.PostJsonAsync("/v1/videos", body)));
        var image = VideoInput.ReadImage(Save(png, ".png"));
        AssertSameFrames(Direct(_pipeline.Defaults.Options(Prompt) with { Seed = 5, Steps = 2, Image = image }), Frames(done));
    }

    [Fact]
    public async Task A_remix_redraws_a_finished_video_under_the_new_prompt()
    {
        var source = await Finished(await _server.CreateAsync(("prompt", Prompt), ("seconds", "1"), ("steps", "2"), ("seed", "1")));
        string sourceId = source.GetProperty("id").GetString()!;
        var remix = await TestServer.Ok(await _server.PostJsonAsync($"/v1/videos/{sourceId}/remix", new { prompt = "a red circle moving right on a blue background", steps = 4, seed = 2, strength = 0.5 }));
        Assert.Equal(sourceId, remix.GetProperty("remixed_from_video_id").GetString());
        Assert.Equal(source.GetProperty("size").GetString(), remix.GetProperty("size").GetString());
        Assert.Equal(source.GetProperty("seconds").GetString(), remix.GetProperty("seconds").GetString());
        var done = await Finished(remix);
        Assert.Equal(sourceId, done.GetProperty("remixed_from_video_id").GetString());

        var sourceFrames = Frames(source);
        var expected = Direct(_pipeline.Defaults.Options("a red circle moving right on a blue background") with
        {
            Seed = 2, Steps = 4, Video = sourceFrames, VideoRole = VideoRole.Edit, Strength = 0.5,
        });
        AssertSameFrames(expected, Frames(done));
        await TestServer.Error(await _server.PostJsonAsync($"/v1/videos/{sourceId}/remix", new { prompt = "x", steps = 1, strength = 0.5 }), 400, "strength");
    }

    [Fact]
    public async Task An_edit_takes_an_uploaded_clip_or_a_finished_video_id()
    {
        var clip = TestVideos.Smooth(frames: 11, height: 32, width: 32);
        string gif = Path.Combine(_server.StoreDir, "upload.gif");
        GifWriter.Write(clip, gif, fps: 8);
        var response = await _server.PostFormAsync("/v1/videos/edits", [("prompt", Prompt), ("steps", "3"), ("seed", "9")], ("video", "clip.gif", File.ReadAllBytes(gif)));
        var created = await TestServer.Ok(response);
        Assert.Equal("1", created.GetProperty("seconds").GetString()); // 11 frames: the model takes the first 9
        var done = await Finished(created);
        var uploaded = VideoInput.ReadClip(gif); // the clip as the server decodes it
        AssertSameFrames(Direct(_pipeline.Defaults.Options(Prompt) with { Seed = 9, Steps = 3, Frames = 9, Video = uploaded }), Frames(done));

        string doneId = done.GetProperty("id").GetString()!;
        var byId = await TestServer.Ok(await _server.PostFormAsync("/v1/videos/edits", [("prompt", Prompt), ("video[id]", doneId), ("steps", "2"), ("seed", "3")]));
        var edited = await Finished(byId);
        AssertSameFrames(Direct(_pipeline.Defaults.Options(Prompt) with { Seed = 3, Steps = 2, Video = Frames(done) }), Frames(edited));

        var bomb = await _server.PostFormAsync("/v1/videos/edits", [("prompt", Prompt)], ("video", "bomb.gif", UploadBudgetTests.LyingGif()));
        Assert.Equal("video_too_large", (await TestServer.Error(bomb, 400, "video")).GetProperty("code").GetString());
        var notClip = await _server.PostFormAsync("/v1/videos/edits", [("prompt", Prompt)], ("video", "clip.gif", "GIF89a but not really"u8.ToArray()));
        await TestServer.Error(notClip, 400, "video");
        await TestServer.Error(await _server.PostFormAsync("/v1/videos/edits", [("prompt", Prompt)]), 400, "video");
    }

    [Fact]
    public async Task An_extension_continues_a_finished_video_and_returns_the_stitched_clip()
    {
        var source = await Finished(await _server.CreateAsync(("prompt", Prompt), ("seconds", "1"), ("steps", "2"), ("seed", "4")));
        string sourceId = source.GetProperty("id").GetString()!;
        var created = await TestServer.Ok(await _server.PostFormAsync("/v1/videos/extensions",
            [("prompt", Prompt), ("seconds", "1"), ("video[id]", sourceId), ("steps", "3"), ("seed", "8")]));
        Assert.Equal("2", created.GetProperty("seconds").GetString()); // 9 + 8 new frames = 17 at 8 fps
        var done = await Finished(created);

        var sourceFrames = Frames(source);
        var result = Frames(done);
        Assert.Equal(17, result.Frames);
        // The model re-creates the clip's last 5 frames and adds 8: the source's first 4 frames stay as they were.
        Assert.Equal(sourceFrames.Slice(0, 4).Rgb, result.Slice(0, 4).Rgb);
        var continuation = Direct(_pipeline.Defaults.Options(Prompt) with
        {
            Seed = 8, Steps = 3, Frames = 13, Video = sourceFrames, VideoRole = VideoRole.Extend, ExtendFrames = 5,
        });
        AssertSameFrames(continuation, result.Slice(4, 13));

        await TestServer.Error(await _server.PostFormAsync("/v1/videos/extensions", [("prompt", Prompt), ("video[id]", sourceId)]), 400, "seconds");
        await TestServer.Error(await _server.PostFormAsync("/v1/videos/extensions", [("prompt", Prompt), ("seconds", "30"), ("video[id]", sourceId)]), 400, "seconds");
    }

    private async Task<JsonElement> Finished(JsonElement created)
    {
        var video = await _server.WaitAsync(created.GetProperty("id").GetString()!);
        Assert.True(video.GetProperty("status").GetString() == "completed", video.ToString());
        return video;
    }

    /// <summary>A finished video's lossless frames as the server stored them (the source of later remixes).</summary>
    private VideoFrames Frames(JsonElement video)
        => VideoInput.ReadClip(Path.Combine(_server.StoreDir, "videos", video.GetProperty("id").GetString()!, "frames"));

    private VideoFrames Direct(GenerationOptions options)
    {
        var result = _pipeline.Generate(options);
        result.Latents?.Dispose();
        return result.Video!;
    }

    /// <summary>Equal after the 8-bit rounding the stored PNG frames went through.</summary>
    private static void AssertSameFrames(VideoFrames expected, VideoFrames actual)
    {
        Assert.Equal((expected.Frames, expected.Height, expected.Width), (actual.Frames, actual.Height, actual.Width));
        for (int f = 0; f < expected.Frames; f++) Assert.Equal(expected.FrameBytes(f), actual.FrameBytes(f));
    }

    private string Save(byte[] bytes, string ext)
    {
        string path = Path.Combine(_server.StoreDir, Guid.NewGuid().ToString("N") + ext);
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
