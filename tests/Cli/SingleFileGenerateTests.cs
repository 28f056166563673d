using Xunit;

namespace Sora.Tests.Cli;

/// <summary>
/// <c>sora generate</c> on the files people download (tests/fixtures/single-file-small): a transformer single file
/// with its Wan config, the original-layout VAE, LoRAs, 3 UniPC steps at flow shift 3.0 with CFG 5, against the Wan
/// team's modules (pipeline_case.safetensors, multi-step tolerance 1e-3).
/// </summary>
public sealed class SingleFileGenerateTests : IDisposable
{
    private readonly string _dir = CliRunner.NewTempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Fixture(string file) => Path.Combine(AppContext.BaseDirectory, "fixtures", "single-file-small", file);

    private static string[] Args(string transformer, string output, params string[] more) =>
    [
        "generate", "--device", "cpu",
        "--transformer", Fixture(transformer), "--transformer-config", Fixture("transformer_config.json"),
        "--vae", Fixture("wan_2.1_vae_tiny_bf16.safetensors"),
        "--latents", Fixture("cli/latents.safetensors"),
        "--prompt-embeds", Fixture("cli/prompt_embeds.safetensors"),
        "--negative-prompt-embeds", Fixture("cli/negative_prompt_embeds.safetensors"),
        "--steps", "3", "--guidance", "5", "--output-type", "latent", "--out", output, .. more,
    ];

    private double Run(string transformer, string expected, params string[] more)
    {
        string output = Path.Combine(_dir, expected + ".safetensors");
        var r = CliRunner.Run(Args(transformer, output, more)); // an absolute path passes through Fixture unchanged
        Assert.True(r.Code == 0, r.Err);
        var (expectedShape, reference) = MiniSafetensors.ReadF32(Fixture("pipeline_case.safetensors"), expected);
        var (shape, actual) = MiniSafetensors.ReadF32(output, "latents");
        Assert.Equal(expectedShape, shape);
        double error = MiniSafetensors.RelativeError(actual, reference);
        Console.WriteLine($"sora generate --transformer {transformer} {string.Join(' ', more)}: relative error {error:E2}");
        return error;
    }

    [Fact]
    public void The_fp16_file_reproduces_the_reference_three_steps()
        => Assert.InRange(Run("wan2.1_t2v_tiny_fp16.safetensors", "expected_fp16"), 0, 1e-3);

    [Fact]
    public void A_comfy_lora_on_the_bf16_file_reproduces_the_reference_and_says_what_it_touched()
    {
        string output = Path.Combine(_dir, "lora.safetensors");
        var r = CliRunner.Run(Args("wan2.1_t2v_tiny_bf16.safetensors", output, "--lora", Fixture("lora_tiny_comfy.safetensors") + ":0.8"));
        Assert.True(r.Code == 0, r.Err);
        var (_, reference) = MiniSafetensors.ReadF32(Fixture("pipeline_case.safetensors"), "expected_bf16_lora_comfy");
        double error = MiniSafetensors.RelativeError(MiniSafetensors.ReadF32(output, "latents").Values, reference);
        Console.WriteLine($"sora generate bf16 + comfy LoRA: relative error {error:E2}");
        Assert.InRange(error, 0, 1e-3);
        Assert.Contains("LoRA lora_tiny_comfy.safetensors (strength 0.8): 20 of", r.Err);
    }

    [Fact]
    public void The_scaled_fp8_file_reproduces_the_reference_three_steps()
        => Assert.InRange(Run("wan2.1_t2v_tiny_fp8_scaled.safetensors", "expected_fp8_scaled"), 0, 1e-3);

    [Fact]
    public void A_file_converted_to_q8_0_gguf_runs_end_to_end()
    {
        // sora convert writes every weight whose rows are whole 32-blocks as Q8_0, text_embedding.0 (rows of 24) and the
        // patch embedding as F16, 1-D tensors and modulations as F32;
        // the quantised model stays close to the fp16 reference: Q8_0 keeps 8 bits per weight (reduced precision, so
        // the bound is looser than the 1e-3 of the dense files).
        string gguf = Path.Combine(_dir, "tiny-Q8_0.gguf");
        var c = CliRunner.Run("convert", Fixture("wan2.1_t2v_tiny_fp16.safetensors"), "--type", "Q8_0", "--out", gguf);
        Assert.True(c.Code == 0, c.Err);
        Assert.Contains("25 q8_0", c.Out); // 20 block linears, 4 embedder linears, the head
        Assert.Contains("component: transformer", CliRunner.Run("inspect", gguf).Out);
        double error = Run(gguf, "expected_fp16");
        Assert.InRange(error, 1e-6, 2e-2);
    }

    [Fact]
    public void A_flow_shift_changes_the_schedule()
    {
        // Guards the default: at another shift the same inputs land elsewhere, so matching above means shift 3.0 was used.
        string output = Path.Combine(_dir, "shifted.safetensors");
        var r = CliRunner.Run(Args("wan2.1_t2v_tiny_fp16.safetensors", output, "--flow-shift", "5"));
        Assert.True(r.Code == 0, r.Err);
        var (_, reference) = MiniSafetensors.ReadF32(Fixture("pipeline_case.safetensors"), "expected_fp16");
        Assert.True(MiniSafetensors.RelativeError(MiniSafetensors.ReadF32(output, "latents").Values, reference) > 1e-2);
    }

    [Fact]
    public void Every_part_can_be_a_file_with_the_rest_from_the_model_folder()
    {
        // The single-file transformer has the fixture folder model's sizes; the text side is given as files and the
        // VAE and scheduler come from --model: a text prompt then runs through all of them to a video.
        string folder = CliRunner.Model, output = Path.Combine(_dir, "clip.gif");
        var r = CliRunner.Run("generate", "a red circle", "--device", "cpu", "--model", folder,
            "--transformer", Fixture("wan2.1_t2v_tiny_fp16.safetensors"), "--transformer-config", Fixture("transformer_config.json"),
            "--text-encoder", Path.Combine(folder, "text_encoder", "model.safetensors"), "--tokenizer", Path.Combine(folder, "tokenizer", "spiece.model"),
            "--frames", "5", "--height", "16", "--width", "16", "--steps", "2", "--seed", "1", "--out", output);
        Assert.True(r.Code == 0, r.Err);
        Assert.True(File.Exists(output));
        Assert.Contains("wrote", r.Out);
    }

    [Fact]
    public void A_truncated_transformer_file_is_one_error_line_naming_the_file()
    {
        string truncated = Path.Combine(_dir, "truncated.safetensors");
        var bytes = File.ReadAllBytes(Fixture("wan2.1_t2v_tiny_fp16.safetensors"));
        File.WriteAllBytes(truncated, bytes[..(bytes.Length - 1000)]);
        var args = Args("wan2.1_t2v_tiny_fp16.safetensors", Path.Combine(_dir, "x.safetensors"))
            .Select(a => a == Fixture("wan2.1_t2v_tiny_fp16.safetensors") ? truncated : a).ToArray();
        var line = CliRunner.Run(args).SingleError();
        Assert.Contains("truncated.safetensors", line);
        Assert.False(File.Exists(Path.Combine(_dir, "x.safetensors")));
    }

    [Fact]
    public void A_config_that_contradicts_the_shapes_is_one_error_line_naming_key_file_and_tensor()
    {
        string config = Path.Combine(_dir, "config.json");
        File.WriteAllText(config, File.ReadAllText(Fixture("transformer_config.json")).Replace("\"ffn_dim\": 64", "\"ffn_dim\": 128"));
        var args = Args("wan2.1_t2v_tiny_fp16.safetensors", Path.Combine(_dir, "x.safetensors")).Select(a => a == Fixture("transformer_config.json") ? config : a).ToArray();
        var line = CliRunner.Run(args).SingleError();
        Assert.Contains("ffn_dim = 128", line);
        Assert.Contains("wan2.1_t2v_tiny_fp16.safetensors", line);
        Assert.Contains("'blocks.0.ffn.0.weight'", line);
    }

    [Fact]
    public void A_lora_matching_nothing_is_one_error_line_naming_the_file()
    {
        // The VAE is no transformer: none of a VAE file's keys is a LoRA tensor.
        var line = CliRunner.Run(Args("wan2.1_t2v_tiny_fp16.safetensors", Path.Combine(_dir, "x.safetensors"), "--lora", Fixture("cases.safetensors"))).SingleError();
        Assert.Contains("cases.safetensors", line);
        Assert.Contains("'expected_bf16'", line);
    }

    [Fact]
    public void Bad_part_options_are_usage_errors()
    {
        string output = Path.Combine(_dir, "x.safetensors");
        Assert.Contains("--transformer", CliRunner.Run(Args("missing.safetensors", output)).SingleError());
        Assert.Contains("--flow-shift", CliRunner.Run(Args("wan2.1_t2v_tiny_fp16.safetensors", output, "--flow-shift", "-1")).SingleError());
        Assert.Contains("--lora", CliRunner.Run(Args("wan2.1_t2v_tiny_fp16.safetensors", output, "--lora", "nope.safetensors:0.5")).SingleError());
    }
}
