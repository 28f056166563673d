using System.CommandLine;
using System.Globalization;
using Sora.Runtime;
using Sora.Runtime.Safetensors;

namespace Sora.Cli;

/// <summary><c>sora inspect FILE|DIR</c>: tensors, dtypes, shapes and parameter counts of safetensors files.</summary>
public static class InspectCommand
{
    public static Command Build(CliContext context)
    {
        var path = new Argument<string>("path") { Description = "A .safetensors file, or a folder (a model folder: counted per component subfolder)." };
        var tensors = new Option<bool>("--tensors") { Description = "For a folder, also list every tensor (a file always lists them)." };
        var command = new Command("inspect", "Show the tensors, dtypes, shapes and parameter counts of a safetensors file or model folder.") { path, tensors };
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
            var summary = Describe(path);
            PrintTensors(o, summary);
            o.WriteLine($"{Tensors(summary.Entries.Count)}, {Count(summary.Parameters)} parameters ({Short(summary.Parameters)}), {Bytes(summary.Bytes)} ({DTypeMix(summary)})");
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
