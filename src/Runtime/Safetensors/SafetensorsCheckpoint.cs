using System.Text.Json;

namespace Sora.Runtime.Safetensors;

/// <summary>
/// A checkpoint made of one .safetensors file or of shards listed by a *.safetensors.index.json
/// ("weight_map": tensor name → shard file). Tensors are looked up by name across shards.
/// </summary>
public sealed class SafetensorsCheckpoint : ITensorSource
{
    private readonly List<SafetensorsFile> _files = new();
    private readonly Dictionary<string, SafetensorsFile> _byName = new(StringComparer.Ordinal);

    private SafetensorsCheckpoint(string source) => Source = source;

    /// <summary>The file, index or folder this checkpoint was opened from (for error messages).</summary>
    public string Source { get; }

    public IEnumerable<string> Names => _byName.Keys;
    public bool Contains(string name) => _byName.ContainsKey(name);

    public TensorEntry GetEntry(string name) => FileOf(name).GetEntry(name);

    public Tensor Get(string name) => FileOf(name).Get(name);

    public string FileOfTensor(string name) => FileOf(name).Path;

    string ITensorSource.FileOf(string name) => FileOfTensor(name);

    public (DType DType, int[] Shape) Describe(string name)
    {
        var entry = GetEntry(name);
        return (entry.DType, entry.Shape);
    }

    private SafetensorsFile FileOf(string name)
        => _byName.TryGetValue(name, out var f) ? f : throw new SafetensorsException(Source, name, "no such tensor in this checkpoint");

    /// <summary>Opens a .safetensors file, a .safetensors.index.json, or a folder holding exactly one of either kind.</summary>
    public static SafetensorsCheckpoint Open(string path)
    {
        if (Directory.Exists(path))
        {
            var indexes = Directory.GetFiles(path, "*.safetensors.index.json");
            if (indexes.Length == 1) return OpenIndex(indexes[0]);
            if (indexes.Length > 1) throw new SafetensorsException(path, null, "folder holds several *.safetensors.index.json files");
            var files = Directory.GetFiles(path, "*.safetensors");
            if (files.Length == 1) return OpenFiles(path, files);
            throw new SafetensorsException(path, null, files.Length == 0 ? "folder holds no .safetensors file" : "folder holds several .safetensors files but no index");
        }
        if (path.EndsWith(".index.json", StringComparison.Ordinal)) return OpenIndex(path);
        return OpenFiles(path, new[] { path });
    }

    private static SafetensorsCheckpoint OpenIndex(string indexPath)
    {
        if (!File.Exists(indexPath)) throw new SafetensorsException(indexPath, null, "index file not found");
        var weightMap = ReadWeightMap(indexPath);
        string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var shards = weightMap.Values.Distinct(StringComparer.Ordinal).Select(s => System.IO.Path.Combine(dir, s)).ToArray();
        var ckpt = OpenFiles(indexPath, shards);
        try
        {
            foreach (var (name, shard) in weightMap)
            {
                if (!ckpt._byName.TryGetValue(name, out var f))
                    throw new SafetensorsException(indexPath, name, $"listed in the index but missing from shard {shard}");
                if (System.IO.Path.GetFileName(f.Path) != shard)
                    throw new SafetensorsException(indexPath, name, $"the index places it in {shard} but it is in {System.IO.Path.GetFileName(f.Path)}");
            }
            foreach (var (name, f) in ckpt._byName)
                if (!weightMap.ContainsKey(name))
                    throw new SafetensorsException(indexPath, name, $"stored in shard {System.IO.Path.GetFileName(f.Path)} but not listed in the index");
            return ckpt;
        }
        catch
        {
            ckpt.Dispose();
            throw;
        }
    }

    /// <summary>The "weight_map" of an index: tensor name → shard file name (a plain file name in the index's folder).</summary>
    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException(indexPath, null, "index is not a JSON object");
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException(indexPath, null, "index has no weight_map object");
            // EnumerateObject yields every occurrence of a repeated key, so duplicates are caught here
            foreach (var p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new SafetensorsException(indexPath, p.Name, "shard name is not a string");
                string shard = p.Value.GetString()!;
                if (shard.Length == 0 || shard is "." or ".." || shard != System.IO.Path.GetFileName(shard) || shard.Contains('\\'))
                    throw new SafetensorsException(indexPath, p.Name, $"shard name '{shard}' must be a file in the index's folder");
                if (!weightMap.TryAdd(p.Name, shard))
                    throw new SafetensorsException(indexPath, p.Name, "listed twice in weight_map");
            }
        }
        catch (JsonException e) { throw new SafetensorsException(indexPath, null, "index is not valid JSON: " + e.Message, e); }
        catch (IOException e) { throw new SafetensorsException(indexPath, null, "cannot read the index: " + e.Message, e); }
        return weightMap;
    }

    private static SafetensorsCheckpoint OpenFiles(string source, IEnumerable<string> paths)
    {
        var ckpt = new SafetensorsCheckpoint(source);
        try
        {
            foreach (var p in paths)
            {
                var f = SafetensorsFile.Open(p);
                ckpt._files.Add(f);
                foreach (var name in f.Names)
                    if (!ckpt._byName.TryAdd(name, f))
                        throw new SafetensorsException(p, name, $"tensor also stored in {ckpt._byName[name].Path}");
            }
            return ckpt;
        }
        catch
        {
            ckpt.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
        _byName.Clear();
    }
}
