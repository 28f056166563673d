using System.CommandLine;
using System.Globalization;
using Sora.Native.Loading;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Sora.Runtime.Safetensors;

namespace Sora.Cli;

/// <summary>
/// <c>sora inspect FILE|DIR</c>: tensors, dtypes (ggml quant types for GGUF), shapes and parameter counts of
/// safetensors and GGUF files, which component and layout a single file holds, and the memory each component's
/// weights take once loaded (they stay in their stored type).
/// </summary>
public static class InspectCommand
{
    public static Command Build(CliContext context)
    {
        var path = new Argument<string>("path") { Description = "A .safetensors or .gguf file, or a folder (a model folder: counted per component subfolder)." };
        var tensors = new Option<bool>("--tensors") { Description = "For a folder, also list every tensor (a file always lists them)." };
        var command = new Command("inspect", "Show the tensors, dtypes or quant types, shapes, parameter counts and memory of a safetensors or GGUF file or a model folder.") { path, tensors };
        command.SetAction(parse =>
        {
            Run(context, parse.GetValue(path)!, parse.GetValue(tensors));
            return 0;
        });
        return command;
    }

    private static void Run(CliContext context, string path, bool listTensors)
    {
        var o = context.Out;
        if (File.Exists(path))
        {
            if (TensorSources.IsGguf(path))
            {
                InspectGguf(o, path);
                return;
            }
            var summary = Describe(path);
            PrintTensors(o, summary);
            o.WriteLine($"{Tensors(summary.Entries.Count)}, {Count(summary.Parameters)} parameters ({Short(summary.Parameters)}), {Bytes(summary.Bytes)} ({DTypeMix(summary)})");
            o.WriteLine(FileKind.Of(path).Describe(summary.Bytes));
            return;
        }
        if (!Directory.Exists(path)) throw new UsageException($"inspect {path}: no such file or folder");

        var root = Path.GetFullPath(path);
        var files = Directory.EnumerateFiles(root, "*.safetensors", SearchOption.AllDirectories)
            .OrderBy(f => f, StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new UsageException($"inspect {path}: the folder holds no .safetensors file");
        var summaries = files.Select(Describe).ToList();

        foreach (var s in summaries)
        {
            string rel = Path.GetRelativePath(root, s.Path);
            if (listTensors)
            {
                o.WriteLine(rel);
                PrintTensors(o, s);
            }
            o.WriteLine($"{rel}: {Tensors(s.Entries.Count)}, {Count(s.Parameters)} parameters ({Short(s.Parameters)}), {Bytes(s.Bytes)} ({DTypeMix(s)})");
        }
        o.WriteLine();
        var components = summaries.GroupBy(s => ComponentOf(root, s.Path)).ToList();
        int nameWidth = Math.Max("component".Length, components.Max(c => c.Key.Length));
        o.WriteLine($"{"component".PadRight(nameWidth)}  {"tensors",8}  {"parameters",15}  {"",7}  {"bytes",10}");
        foreach (var c in components)
            o.WriteLine($"{c.Key.PadRight(nameWidth)}  {c.Sum(s => s.Entries.Count),8}  {Count(c.Sum(s => s.Parameters)),15}  {Short(c.Sum(s => s.Parameters)),7}  {Bytes(c.Sum(s => s.Bytes)),10}");
        long total = summaries.Sum(s => s.Parameters);
        o.WriteLine($"{"total".PadRight(nameWidth)}  {summaries.Sum(s => s.Entries.Count),8}  {Count(total),15}  {Short(total),7}  {Bytes(summaries.Sum(s => s.Bytes)),10}");
    }

    /// <summary>A GGUF file: each tensor's ggml type (f16, q4_k, ...), shape and bytes, then the totals and what the file holds.</summary>
    private static void InspectGguf(TextWriter o, string path)
    {
        using var file = GgufSource.Open(path);
        var infos = file.File.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        if (infos.Count > 0)
        {
            int nameWidth = Math.Max(6, infos.Max(t => t.Name.Length));
            int shapeWidth = Math.Max(5, infos.Max(t => ShapeText(t.Shape).Length));
            o.WriteLine($"  {"tensor".PadRight(nameWidth)}  {"type",-5}  {"shape".PadRight(shapeWidth)}  {"parameters",13}  {"bytes",10}");
            foreach (var t in infos)
                o.WriteLine($"  {t.Name.PadRight(nameWidth)}  {GgmlTypes.Name(t.Type),-5}  {ShapeText(t.Shape).PadRight(shapeWidth)}  {Count(t.ElementCount),13}  {Bytes(t.ByteLength),10}");
        }
        long parameters = infos.Sum(t => t.ElementCount), bytes = infos.Sum(t => t.ByteLength);
        string mix = string.Join(", ", infos.GroupBy(t => t.Type).OrderBy(g => g.Key).Select(g => $"{GgmlTypes.Name(g.Key)}: {g.Count()}"));
        o.WriteLine($"GGUF v{file.File.Version}, {Tensors(infos.Count)}, {Count(parameters)} parameters ({Short(parameters)}), {Bytes(bytes)} ({mix})");
        o.WriteLine(FileKind.Of(path).Describe(bytes));
    }

    /// <summary>Which component a single file holds and in which layout, read from its tensor names.</summary>
    private sealed record FileKind(string Component, string Arrangement, int Scaled)
    {
        public static FileKind Of(string path)
        {
            using var raw = TensorSources.Open(path);
            var names = raw.Names.ToList();
            int scaled = raw is ScaledFp8Source s ? s.ScaledCount : 0;
            if (names.Any(n => n.Contains(".lora_", StringComparison.Ordinal) || n.EndsWith(".alpha", StringComparison.Ordinal)))
                return new FileKind("LoRA", names.Any(n => n.Contains(".lora_A.", StringComparison.Ordinal)) ? "diffusers/peft" : "ComfyUI/kohya", 0);
            using var transformer = new RenamedSource(TensorSources.Open(path), WanTransformerNames.Table);
            if (transformer.Contains("patch_embedding.weight"))
                return new FileKind("transformer", Layout(transformer), scaled);
            using var umt5 = new RenamedSource(TensorSources.Open(path), Umt5Names.Table);
            if (umt5.Contains("shared.weight") || umt5.Contains("encoder.embed_tokens.weight"))
                return new FileKind("text encoder (UMT5)", Layout(umt5), scaled);
            string vaePrefix = new NameTable([], WanVaeNames.Prefixes).CommonPrefix(names);
            if (raw.Contains(vaePrefix + "decoder.conv1.weight")) return new FileKind("VAE", "Wan original" + (vaePrefix == "" ? "" : $", prefix '{vaePrefix}'"), scaled);
            if (raw.Contains(vaePrefix + "decoder.conv_in.weight")) return new FileKind("VAE", "diffusers", scaled);
            return new FileKind("unknown", "", scaled);
        }

        private static string Layout(RenamedSource s)
            => (s.Renamed == 0 ? "diffusers/Hugging Face names" : "Wan original/llama.cpp names") + (s.Prefix == "" ? "" : $", prefix '{s.Prefix}'");

        public string Describe(long bytes)
            => Component switch
            {
                "unknown" => "component: not recognised as a Wan transformer, VAE, UMT5 encoder or LoRA",
                "LoRA" => $"component: LoRA ({Arrangement}); merged into the transformer's dense weights at load (a merged weight is held as F32)",
                _ => $"component: {Component} ({Arrangement}){(Scaled > 0 ? $", scaled fp8: {Scaled} weights with a scale_weight" : "")}; weights in memory once loaded: {Bytes(bytes)} (kept in their stored type)",
            };
    }

    private static string ShapeText(int[] shape) => "[" + string.Join(", ", shape) + "]";

    private sealed record FileSummary(string Path, List<TensorEntry> Entries)
    {
        public long Parameters => Entries.Sum(e => e.ElementCount);
        public long Bytes => Entries.Sum(e => e.End - e.Begin);
    }

    private static FileSummary Describe(string file)
    {
        using var f = SafetensorsFile.Open(file);
        return new FileSummary(file, f.Entries.OrderBy(e => e.Name, StringComparer.Ordinal).ToList());
    }

    private static void PrintTensors(TextWriter o, FileSummary s)
    {
        if (s.Entries.Count == 0) return;
        int nameWidth = Math.Max(6, s.Entries.Max(e => e.Name.Length));
        int shapeWidth = Math.Max(5, s.Entries.Max(e => ShapeText(e).Length));
        o.WriteLine($"  {"tensor".PadRight(nameWidth)}  {"dtype",-5}  {"shape".PadRight(shapeWidth)}  {"parameters",13}");
        foreach (var e in s.Entries)
            o.WriteLine($"  {e.Name.PadRight(nameWidth)}  {DTypes.SafetensorsName(e.DType),-5}  {ShapeText(e).PadRight(shapeWidth)}  {Count(e.ElementCount),13}");
    }

    /// <summary>The top folder under the model folder ("transformer", "vae", ...); "." for files at its top.</summary>
    private static string ComponentOf(string root, string file)
    {
        var rel = Path.GetRelativePath(root, file);
        int slash = rel.IndexOfAny(['/', '\\']);
        return slash < 0 ? "." : rel[..slash];
    }

    private static string DTypeMix(FileSummary s)
        => string.Join(", ", s.Entries.GroupBy(e => e.DType).OrderBy(g => g.Key)
            .Select(g => $"{DTypes.SafetensorsName(g.Key)}: {g.Count()}"));

    private static string Tensors(int n) => n == 1 ? "1 tensor" : $"{n} tensors";

    private static string ShapeText(TensorEntry e) => "[" + string.Join(", ", e.Shape) + "]";

    internal static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    internal static string Short(long n) => n switch
    {
        >= 1_000_000_000 => (n / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + "B",
        >= 1_000_000 => (n / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + "M",
        >= 1_000 => (n / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + "K",
        _ => n.ToString(CultureInfo.InvariantCulture),
    };

    private static string Bytes(long b) => b switch
    {
        >= 1L << 30 => (b / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
        >= 1L << 20 => (b / (double)(1L << 20)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
        >= 1L << 10 => (b / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        _ => b.ToString(CultureInfo.InvariantCulture) + " B",
    };
}
