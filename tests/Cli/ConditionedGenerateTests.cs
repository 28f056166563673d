using Xunit;

namespace Sora.Tests.Cli;

/// <summary>
/// <c>sora generate</c> with <c>--image</c>, <c>--video --strength</c> and <c>--extend --extend-frames</c> on the
/// Wan2.2-TI2V-style fixture model: each reproduces diffusers' pipeline case from the files in cli/ plus image.png or
/// frames/, and every bad input is one error line naming the argument, exit code 2, nothing written.
/// </summary>
public sealed class ConditionedGenerateTests : IDisposable
{
    private readonly string _dir = CliRunner.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Ti2v => Path.Combine(AppContext.BaseDirectory, "fixtures", "ti2v-small");
    private static string Cli(string file) => Path.Combine(Ti2v, "cli", file);
    private static string Image => Path.Combine(Ti2v, "image.png");
    private static string Frames => Path.Combine(Ti2v, "frames");

    /// <summary>case.json: 9 frames of 96x64, 4 UniPC steps, guidance 5.</summary>
    private static string[] CaseArgs(string outPath, params string[] more) =>
    [
        "generate", "--model", Path.Combine(Ti2v, "model"), "--device", "cpu",
        "--latents", Cli("latents.safetensors"),
        "--prompt-embeds", Cli("prompt_embeds.safetensors"),
        "--negative-prompt-embeds", Cli("negative_prompt_embeds.safetensors"),
        "--frames", "9", "--height", "64", "--width", "96", "--steps", "4", "--guidance", "5",
        "--output-type", "latent", "--out", outPath, .. more,
    ];

    [Theory]
    [InlineData("t2v_case")]
    [InlineData("i2v_case", "--image", "IMAGE")]
    [InlineData("v2v_case", "--video", "FRAMES", "--strength", "0.6")]
    [InlineData("extend_case", "--extend", "FRAMES", "--extend-frames", "5")]
    public void Reproduces_the_reference_pipeline_case(string caseName, params string[] mode)
    {
        var outPath = Path.Combine(_dir, "final.safetensors");
        var args = mode.Select(a => a switch { "IMAGE" => Image, "FRAMES" => Frames, _ => a }).ToArray();
        var r = CliRunner.Run(CaseArgs(outPath, args));
        Assert.True(r.Code == 0, r.Err);
        var (expectedShape, expected) = MiniSafetensors.ReadF32(Path.Combine(Ti2v, caseName + ".safetensors"), "expected_latents");
        var (shape, actual) = MiniSafetensors.ReadF32(outPath, "latents");
        Assert.Equal(expectedShape, shape);
        double error = MiniSafetensors.RelativeError(actual, expected);
        Console.WriteLine($"CLI {caseName}: latents relative error {error:E2}");
        Assert.InRange(error, 0, 1e-3);
    }

    [Fact]
    public void Join_writes_the_source_then_the_continuation()
    {
        var outDir = Path.Combine(_dir, "joined") + "/";
        var r = CliRunner.Run("generate", "--model", Path.Combine(Ti2v, "model"), "--device", "cpu",
            "--prompt-embeds", Cli("prompt_embeds.safetensors"), "--negative-prompt-embeds", Cli("negative_prompt_embeds.safetensors"),
            "--frames", "9", "--height", "64", "--width", "96", "--steps", "2", "--seed", "3",
            "--extend", Frames, "--extend-frames", "5", "--join", "--out", outDir);
        Assert.True(r.Code == 0, r.Err);
        // 9 source frames, the last 5 re-made as the start of the 9 new ones: 4 + 9, the first 4 exactly the source's.
        var joined = Sora.Native.Video.VideoInput.ReadClip(outDir);
        var source = Sora.Native.Video.VideoInput.ReadClip(Frames);
        Assert.Equal(13, joined.Frames);
        int head = 4 * source.FrameValues;
        Assert.Equal(source.Rgb[..head], joined.Rgb[..head]);
    }

    public static TheoryData<string, string[]> BadArguments()
    {
        string truncated = Path.Combine(Path.GetTempPath(), "sora-truncated-image.png");
        File.WriteAllBytes(truncated, File.ReadAllBytes(Image)[..200]);
        return new()
        {
            { "--image", ["--image", Image, "--video", Frames] },
            { "--image", ["--image", truncated] },
            { "--image", ["--image", Path.Combine(Ti2v, "no-such-image.png")] },
            { "--strength", ["--video", Frames, "--strength", "1.5"] },
            { "--strength", ["--video", Frames, "--strength", "0"] },
            { "--strength", ["--strength", "0.5"] },
            { "--extend-frames", ["--extend", Frames, "--extend-frames", "6"] },
            { "--extend", ["--extend", Frames, "--extend-frames", "13", "--frames", "17"] },
            { "--video", ["--video", Frames, "--frames", "13"] },
            { "--width", ["--width", "80"] },
            { "--join", ["--join"] },
            { "--frames", ["--frames", "401", "--height", "16384", "--width", "16384"] },
        };
    }

    [Theory]
    [MemberData(nameof(BadArguments))]
    public void Bad_input_is_one_line_naming_the_argument_and_writes_nothing(string flag, string[] args)
    {
        var outPath = Path.Combine(_dir, "out.gif");
        var sizes = new[] { ("--frames", "9"), ("--height", "64"), ("--width", "96") }
            .Where(s => !args.Contains(s.Item1)).SelectMany(s => new[] { s.Item1, s.Item2 });
        var r = CliRunner.Run(["generate", "--model", Path.Combine(Ti2v, "model"), "--device", "cpu",
            "--prompt-embeds", Cli("prompt_embeds.safetensors"), "--negative-prompt-embeds", Cli("negative_prompt_embeds.safetensors"),
            "--steps", "2", "--out", outPath, .. sizes, .. args]);
        Assert.Equal(2, r.Code);
        Assert.Contains(flag, r.SingleError());
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }
}
