using System.CommandLine;
using Sora.Kernels;
using Sora.Native.Text;
using Sora.Runtime;
using Sora.Runtime.Safetensors;

namespace Sora.Cli;

/// <summary>
/// <c>sora encode-prompt --model DIR "text" --out F.safetensors</c>: the umT5 prompt embedding [1, 512, d] as the
/// pipeline builds it (the text's rows, then zero rows), stored as "prompt_embeds" for <c>generate --prompt-embeds</c>.
/// </summary>
public static class EncodePromptCommand
{
    public const int TextLength = 512;

    public static Command Build(CliContext context)
    {
        var text = new Argument<string>("text") { Description = "The prompt." };
        var model = Commands.ModelOption();
        var device = Commands.DeviceOption();
        var output = new Option<string>("--out", "-o") { Description = "Output .safetensors file.", Required = true, HelpName = "FILE" };
        var command = new Command("encode-prompt", "Encode a prompt with the model's umT5 text encoder and save prompt_embeds [1, 512, d].")
        {
            text, model, device, output,
        };
        command.SetAction(parse =>
        {
            string outPath = parse.GetValue(output)!;
            if (!outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"--out {outPath}: prompt embeddings are written as a .safetensors file");
            string deviceName = Commands.CheckDevice(parse.GetValue(device)!);
            Native.Video.AtomicOutput.EnsureWritable(outPath, isFolder: false);
            string modelDir = ModelLocator.Resolve(parse.GetValue(model));
            var tokenizer = SentencePieceTokenizer.Load(ModelLocator.Component(modelDir, "tokenizer", "spiece.model", "tokenizer.json"));
            int[] ids = tokenizer.EncodeForModel(parse.GetValue(text)!, TextLength);

            using var backend = Commands.CreateBackend(deviceName);
            using var encoder = Umt5Encoder.Load(ModelLocator.Component(modelDir, "text_encoder", "config.json"), backend);
            context.Ct.ThrowIfCancellationRequested();
            using var encoded = encoder.Encode(ids);
            using var host = backend.ToHost(encoded);
            using var padded = PadRows(host, TextLength);
            SafetensorsWriter.Write(outPath, [new("prompt_embeds", padded)],
                new Dictionary<string, string> { ["prompt"] = parse.GetValue(text)!, ["tokens"] = ids.Length.ToString() });
            context.Out.WriteLine($"wrote {outPath}: prompt_embeds [1, {TextLength}, {padded.Dim(2)}] ({ids.Length} tokens)");
            return 0;
        });
        return command;
    }

    /// <summary>[L, d] → [1, rows, d]: the L rows first, zeros after.</summary>
    public static Tensor PadRows(Tensor embeds, int rows)
    {
        int length = embeds.Dim(0), d = embeds.Dim(1);
        var values = new float[rows * d];
        embeds.ToFloatArray().AsSpan(0, Math.Min(length, rows) * d).CopyTo(values);
        return Tensor.FromArray(values, [1, rows, d]);
    }
}
