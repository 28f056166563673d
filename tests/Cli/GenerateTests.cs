using Sora.Tests.Video;
using Xunit;

namespace Sora.Tests.Cli;

/// <summary>
/// <c>sora generate</c> end to end on the tiny fixture model (CPU backend): the final latents match the reference
/// pipeline's, every video format holds the right frames, and Ctrl+C leaves nothing behind.
/// </summary>
public sealed class GenerateTests : IDisposable
{
    private readonly string _dir = CliRunner.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Cli(string file) => Path.Combine(CliRunner.Fixtures, "cli", file);

    /// <summary>pipeline_case's inputs, 4 UniPC steps, CFG 5 (case.json): 9 frames of 48x32.</summary>
    private static string[] FixtureArgs(params string[] more) => FixtureArgsWithModel(CliRunner.Model, more);

    private static string[] FixtureArgsWithModel(string model, params string[] more) =>
    [
        "generate", "--model", model, "--device", "cpu",
        "--latents", Cli("latents.safetensors"),
        "--prompt-embeds", Cli("prompt_embeds.safetensors"),
        "--negative-prompt-embeds", Cli("negative_prompt_embeds.safetensors"),
        "--steps", "4", .. more,
    ];

    [Fact]
    public void LatentOutputReproducesTheReferencePipeline()
    {
        var outPath = Path.Combine(_dir, "final.safetensors");
        var r = CliRunner.Run(FixtureArgs("--output-type", "latent", "--out", outPath));
        Assert.True(r.Code == 0, r.Err);
        var (expectedShape, expected) = MiniSafetensors.ReadF32(Path.Combine(CliRunner.Fixtures, "pipeline_case.safetensors"), "expected_latents");
        var (shape, actual) = MiniSafetensors.ReadF32(outPath, "latents");
        Assert.Equal(expectedShape, shape);
        Assert.InRange(MiniSafetensors.RelativeError(actual, expected), 0, 1e-3);
        Assert.Contains("step 4/4", r.Err); // the progress bar reported every step
        Assert.Single(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void TextPromptChainReproducesTheReferencePipeline()
    {
        // prompt_case: the prompt and negative prompt as text, so the tokenizer and text encoder run too.
        var caseFile = Path.Combine(CliRunner.Fixtures, "prompt_case.safetensors");
        var (latentShape, latents) = MiniSafetensors.ReadF32(caseFile, "latents");
        var latentsPath = Path.Combine(_dir, "noise.safetensors");
        MiniSafetensors.WriteF32(latentsPath, ("latents", latentShape, latents));
        var outPath = Path.Combine(_dir, "final.safetensors");
        var r = CliRunner.Run("generate", "A red circle moving left on a black background.", "--negative-prompt", "blurry, static",
            "--model", CliRunner.Model, "--device", "cpu", "--latents", latentsPath, "--steps", "4", "--guidance", "5",
            "--output-type", "latent", "--out", outPath);
        Assert.True(r.Code == 0, r.Err);
        var (_, expected) = MiniSafetensors.ReadF32(caseFile, "expected_latents");
        Assert.InRange(MiniSafetensors.RelativeError(MiniSafetensors.ReadF32(outPath, "latents").Values, expected), 0, 1e-3);
    }

    [Fact]
    public void GifHasNineFramesOfTheRequestedSize()
    {
        var outPath = Path.Combine(_dir, "v.gif");
        var r = CliRunner.Run(FixtureArgs("--out", outPath));
        Assert.True(r.Code == 0, r.Err);
        var gif = MiniGif.Read(File.ReadAllBytes(outPath));
        Assert.Equal((48, 32, 9), (gif.Width, gif.Height, gif.Frames.Count));
        if (Ffmpeg.Available) Assert.Equal((9, 48, 32), Ffmpeg.Probe(outPath));
    }

    [Fact]
    public void Y4mMatchesTheReferenceVideo()
    {
        var outPath = Path.Combine(_dir, "v.y4m");
        var r = CliRunner.Run(FixtureArgs("--out", outPath));
        Assert.True(r.Code == 0, r.Err);
        var y4m = MiniY4m.Read(File.ReadAllBytes(outPath));
        Assert.Contains("W48", y4m.Header);
        Assert.Contains("H32", y4m.Header);
        Assert.Equal(9, y4m.Frames.Count);

        // The luma of the reference video ([1, F, 3, H, W] in [0, 1]) by BT.601, against the file's Y plane.
        var (_, video) = MiniSafetensors.ReadF32(Path.Combine(CliRunner.Fixtures, "pipeline_case.safetensors"), "expected_video");
        int plane = 32 * 48;
        double maxDiff = 0;
        for (int f = 0; f < 9; f++)
            for (int p = 0; p < plane; p++)
            {
                double rr = video[(f * 3 + 0) * plane + p], gg = video[(f * 3 + 1) * plane + p], bb = video[(f * 3 + 2) * plane + p];
                double luma = 16 + 219 * (0.299 * rr + 0.587 * gg + 0.114 * bb);
                maxDiff = Math.Max(maxDiff, Math.Abs(y4m.Frames[f].Y[p] - luma));
            }
        Assert.InRange(maxDiff, 0, 1.5); // 8-bit rounding plus the pipeline's 1e-3 tolerance
    }

    [Fact]
    public void PngFolderHoldsEveryFrame()
    {
        var outPath = Path.Combine(_dir, "frames");
        var r = CliRunner.Run(FixtureArgs("--out", outPath + "/"));
        Assert.True(r.Code == 0, r.Err);
        var files = Directory.GetFiles(outPath).Order().ToArray();
        Assert.Equal(9, files.Length);
        foreach (var f in files)
        {
            var (w, h, _) = MiniPng.Decode(File.ReadAllBytes(f));
            Assert.Equal((48, 32), (w, h));
        }
        Assert.Single(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void CtrlCStopsCleanlyWithExitCode130AndNoOutput()
    {
        using var cts = new CancellationTokenSource();
        // Cancel as soon as the progress bar reports the first step, as Ctrl+C in the middle of denoising would.
        var err = new CancelOnText("step 1/", cts);
        var output = new StringWriter();
        int code = Sora.Cli.Program.Run(FixtureArgs("--out", Path.Combine(_dir, "v.gif")), output, err, cts.Token);
        Assert.Equal(130, code);
        Assert.True(cts.IsCancellationRequested);
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
        Assert.Contains("cancelled", err.ToString());
    }

    [Fact]
    public void CorruptWeightsAreOneLineAndWriteNothing()
    {
        var model = CopyModel();
        var weights = Path.Combine(model, "transformer", "diffusion_pytorch_model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length - 100)]);
        var line = CliRunner.Run(FixtureArgsWithModel(model, "--out", Path.Combine(_dir, "v.gif"))).SingleError();
        Assert.Contains("diffusion_pytorch_model.safetensors", line);
        Assert.False(File.Exists(Path.Combine(_dir, "v.gif")));
    }

    [Fact]
    public void MissingComponentIsOneLine()
    {
        var model = CopyModel();
        Directory.Delete(Path.Combine(model, "vae"), recursive: true);
        var line = CliRunner.Run(FixtureArgsWithModel(model, "--out", Path.Combine(_dir, "v.gif"))).SingleError();
        Assert.Contains("vae", line);
        Assert.False(File.Exists(Path.Combine(_dir, "v.gif")));
    }

    private string CopyModel()
    {
        var target = Path.Combine(_dir, "model");
        foreach (var file in Directory.GetFiles(CliRunner.Model, "*", SearchOption.AllDirectories))
        {
            var dest = Path.Combine(target, Path.GetRelativePath(CliRunner.Model, file));
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(file, dest);
        }
        return target;
    }

    /// <summary>A stderr that trips a cancellation when a given text is written to it.</summary>
    private sealed class CancelOnText(string trigger, CancellationTokenSource cts) : StringWriter
    {
        public override void Write(string? value)
        {
            base.Write(value);
            if (value is not null && value.Contains(trigger)) cts.Cancel();
        }

        public override void WriteLine(string? value)
        {
            Write(value);
            base.WriteLine();
        }
    }
}
