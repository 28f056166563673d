using System.Text.Json;

namespace Sora.Bench;

/// <summary>
/// `--check-shapes FILE`: compares the tensors that <see cref="WanBenchModels"/> writes with the parameter names and
/// shapes of diffusers' own models (FILE from `bench/diffusers_peer.py --dump-shapes FILE`), so both sides of the
/// whole-model benchmarks run the same network. Prints each difference; exit code 1 when there is any.
/// </summary>
public static class WanBenchShapeCheck
{
    public static int Run(string path)
    {
        Dictionary<string, Dictionary<string, int[]>>? dumped;
        try { dumped = JsonSerializer.Deserialize<Dictionary<string, Dictionary<string, int[]>>>(File.ReadAllText(path)); }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"check-shapes: {path}: {e.Message}");
            return 2;
        }
        int differences = 0;
        foreach (var (model, ours) in new[] { ("vae", WanBenchModels.Vae22Shapes()), ("transformer", WanBenchModels.TransformerShapes()) })
        {
            if (dumped is null || !dumped.TryGetValue(model, out var theirs))
            {
                Console.Error.WriteLine($"check-shapes: {path}: no '{model}' entry");
                return 2;
            }
            var mine = ours.ToDictionary(t => t.Name, t => t.Shape);
            foreach (var (name, shape) in theirs)
            {
                if (!mine.TryGetValue(name, out var m)) Report($"{model}: {name} {Show(shape)} is missing from the bench's weights");
                else if (!m.SequenceEqual(shape)) Report($"{model}: {name} is {Show(m)} in the bench, {Show(shape)} in diffusers");
            }
            foreach (var name in mine.Keys.Where(n => !theirs.ContainsKey(n))) Report($"{model}: {name} is not a diffusers parameter");
            Console.WriteLine($"{model}: {mine.Count} tensors written, {theirs.Count} in diffusers");
        }
        Console.WriteLine(differences == 0 ? "check-shapes: identical" : $"check-shapes: {differences} differences");
        return differences == 0 ? 0 : 1;

        void Report(string line)
        {
            differences++;
            Console.WriteLine(line);
        }
    }

    private static string Show(int[] shape) => "[" + string.Join(", ", shape) + "]";
}
