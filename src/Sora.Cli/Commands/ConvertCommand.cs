using System.CommandLine;
using System.Diagnostics;
using Sora.Native.Loading;
using Sora.Runtime.Gguf;

namespace Sora.Cli;

/// <summary><c>sora convert IN --type Q4_K --out OUT.gguf</c>: quantise any checkpoint this engine reads to GGUF.</summary>
public static class ConvertCommand
{
    public static Command Build(CliContext context)
    {
        var input = new Argument<string>("input") { Description = "A .safetensors file, *.safetensors.index.json or folder of them (e.g. a diffusers transformer/), or a .gguf file." };
        var type = new Option<string>("--type", "-t") { Description = "Target type: " + string.Join(", ", GgufConverter.Targets.Select(GgmlTypes.Name)) + ".", DefaultValueFactory = _ => "Q8_0", HelpName = "TYPE" };
        var output = new Option<string?>("--out", "-o") { Description = "The .gguf file to write (default: the input's name with the type, e.g. model-Q4_K.gguf).", HelpName = "FILE" };
        var command = new Command("convert", "Write a checkpoint as GGUF in one of ggml's types (weights quantised with ggml's reference quantisers; 1-D tensors and modulation tables F32).")
        {
            input, type, output,
        };
        command.SetAction(parse =>
        {
            string from = parse.GetValue(input)!;
            string typeName = parse.GetValue(type)!;
            var target = GgufConverter.Targets.FirstOrDefault(t => GgmlTypes.Name(t).Equals(typeName, StringComparison.OrdinalIgnoreCase), (GgmlType)uint.MaxValue);
            if (!GgufConverter.Targets.Contains(target))
                throw new UsageException($"--type: '{typeName}' is not one of {string.Join(", ", GgufConverter.Targets.Select(GgmlTypes.Name))}");
            if (!File.Exists(from) && !Directory.Exists(from)) throw new UsageException($"convert: {from}: file not found");
            string to = parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(from.TrimEnd('/')))!,
                Path.GetFileNameWithoutExtension(from.TrimEnd('/')) + "-" + GgmlTypes.Name(target) + ".gguf");
            if (!to.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) throw new UsageException($"--out {to}: the output is a .gguf file");
            var clock = Stopwatch.StartNew();
            var written = GgufConverter.Convert(from, to, target, context.Ct);
            long bytes = new FileInfo(to).Length;
            var byType = written.GroupBy(w => w.Type).Select(g => $"{g.Count()} {GgmlTypes.Name(g.Key)}");
            context.Out.WriteLine($"wrote {to}: {written.Count} tensors ({string.Join(", ", byType)}), {bytes / 1048576.0:0.0} MiB in {clock.Elapsed.TotalSeconds:0.0} s");
            return 0;
        });
        return command;
    }
}
