using Sora.Cli;
using Sora.Kernels.Cpu;
using Sora.Native.Pipeline;
using Sora.Native.Text;
using Sora.Native.Video;
using Sora.Tests.Cli;
using Sora.Tests.Video;
using Xunit;
using Xunit.Abstractions;

namespace Sora.Tests.EndToEnd;

/// <summary>The shipped model in weights/, loaded once for the end-to-end tests.</summary>
public sealed class DefaultModel : IDisposable
{
    public DefaultModel()
    {
        Backend = new CpuBackend();
        string dir = ModelLocator.Resolve(null);
        Pipeline = WanPipeline.Load(dir, Backend);
        var words = PromptVocabulary.Load(dir)?.Words;
        Colours = words is null ? ClipMeasure.Palette.Keys.ToList() : ClipMeasure.Palette.Keys.Where(words.Contains).ToList();
        Diagonals = words?.Contains("and") ?? true;
    }

    public CpuBackend Backend { get; }
    public WanPipeline Pipeline { get; }

    /// <summary>The palette colours the model's captions name (its generation_defaults.json vocabulary): six for v1.</summary>
    public IReadOnlyList<string> Colours { get; }

    /// <summary>Whether its captions had diagonal motions ("up and left"); v1's moved only straight.</summary>
    public bool Diagonals { get; }

    /// <summary>A clip judged in the model's own world: its colours only, diagonals only where it learnt them.</summary>
    public ClipMeasure Measure(VideoFrames clip) => ClipMeasure.Of(clip, Colours) with { Diagonals = Diagonals };

    public ClipMeasure Generate(string prompt, long seed)
    {
        var result = Pipeline.Generate(Pipeline.Defaults.Options(prompt) with { Seed = seed });
        using var latents = result.Latents;
        return Measure(result.Video!);
    }

    public void Dispose()
    {
        Pipeline.Dispose();
        Backend.Dispose();
    }
}

/// <summary>
/// What a viewer would check in clips of the shipped model: the object has the prompted colour and its centroid
/// moves the prompted way, the background has the prompted colour (both named among the colours the model's
/// captions use, <see cref="DefaultModel.Measure"/>). Each prompt runs with five seeds and is decided by majority,
/// so one bad sample does not fail the suite.
/// </summary>
public sealed class DefaultModelTests(DefaultModel model, ITestOutputHelper output) : IClassFixture<DefaultModel>
{
    private static readonly long[] Seeds = [1, 2, 3, 4, 5];

    [Theory]
    [InlineData("a yellow square moving up on a black background", "yellow", "black", "up")]
    [InlineData("a red circle moving right on a blue background", "red", "blue", "right")]
    [InlineData("a green triangle moving left on a white background", "green", "white", "left")]
    [InlineData("a blue square moving down on a yellow background", "blue", "yellow", "down")]
    [InlineData("a white circle moving left on a red background", "white", "red", "left")]
    public void Seen_combinations_come_out_as_prompted(string prompt, string colour, string background, string direction)
        => AssertMajority(prompt, colour, background, direction);

    /// <summary>Object colour, shape and motion combinations that training never showed (tools/train-default-model/data.py HOLDOUT).</summary>
    [Theory]
    [InlineData("a red triangle moving left on a green background", "red", "green", "left")]
    [InlineData("a blue circle moving down on a white background", "blue", "white", "down")]
    [InlineData("a green square moving right on a black background", "green", "black", "right")]
    [InlineData("a white triangle moving up on a blue background", "white", "blue", "up")]
    public void Held_out_combinations_come_out_as_prompted(string prompt, string colour, string background, string direction)
        => AssertMajority(prompt, colour, background, direction);

    [Fact]
    public void The_cli_writes_the_requested_clip_with_the_default_model()
    {
        string dir = CliRunner.NewTempDir();
        try
        {
            string frames = Path.Combine(dir, "frames") + Path.DirectorySeparatorChar;
            var run = CliRunner.Run("generate", "a yellow square moving up on a black background", "--seed", "2", "--out", frames);
            Assert.True(run.Code == 0, run.Err);
            var files = Directory.GetFiles(frames, "*.png").Order().ToArray();
            var defaults = model.Pipeline.Defaults;
            Assert.Equal(defaults.Frames, files.Length);
            var rgb = new List<float>();
            foreach (var file in files)
            {
                var (width, height, bytes) = MiniPng.Decode(File.ReadAllBytes(file));
                Assert.Equal((defaults.Width, defaults.Height), (width, height));
                rgb.AddRange(bytes.Select(b => b / 255f));
            }
            var seen = model.Measure(new VideoFrames(files.Length, defaults.Height, defaults.Width, rgb.ToArray()));
            output.WriteLine(seen.ToString());
            Assert.Equal("black", seen.BackgroundColour);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private void AssertMajority(string prompt, string colour, string background, string direction)
    {
        var clips = Seeds.Select(seed => model.Generate(prompt, seed)).ToList();
        foreach (var (clip, seed) in clips.Zip(Seeds)) output.WriteLine($"seed {seed}: {clip}");
        int need = Seeds.Length / 2 + 1;
        Assert.True(clips.Count(c => c.ObjectColour == colour) >= need, $"object colour {colour} in fewer than {need} of {Seeds.Length} clips");
        Assert.True(clips.Count(c => c.BackgroundColour == background) >= need, $"background {background} in fewer than {need} of {Seeds.Length} clips");
        Assert.True(clips.Count(c => c.Motion == direction) >= need, $"motion {direction} in fewer than {need} of {Seeds.Length} clips");
    }
}
