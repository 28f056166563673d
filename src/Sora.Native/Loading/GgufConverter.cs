using System.Runtime.InteropServices;
using Sora.Runtime;
using Sora.Runtime.Gguf;
using Sora.Runtime.Safetensors;

namespace Sora.Native.Loading;

/// <summary>One tensor of a conversion: its name, the type it was written in, and its logical shape.</summary>
public sealed record ConvertedTensor(string Name, GgmlType Type, int[] Shape);

/// <summary>
/// <c>sora convert</c>: any checkpoint this engine reads (a .safetensors file, index or folder, or a .gguf file) to a
/// GGUF file in one of ggml's types, tensor by tensor so the model is never held whole, with city96's ComfyUI-GGUF
/// rules: 1-D tensors and the AdaLN modulation tables stay F32; a weight whose rows (its last axis) split into whole
/// blocks of the type is quantised with ggml's reference quantiser; any other weight is F16 (BF16 for a BF16 file).
/// Names are kept as stored, so a file converted from an original-layout checkpoint is what ComfyUI-GGUF reads and a
/// diffusers one loads here as it did. Tensors of more than 4 axes (the patch embedding) are stored as 2-D
/// [out, rest] with their shape in <c>comfy.gguf.orig_shape.&lt;name&gt;</c>.
/// </summary>
public static class GgufConverter
{
    /// <summary>The types a conversion can target (those ggml's reference quantisers here implement).</summary>
    public static IReadOnlyList<GgmlType> Targets { get; } =
        [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];

    /// <summary>The type a tensor of <paramref name="shape"/> called <paramref name="name"/> is written in when <paramref name="target"/> is asked for.</summary>
    public static GgmlType TypeFor(string name, int[] shape, GgmlType target)
    {
        if (shape.Length <= 1 || name.Contains("modulation", StringComparison.Ordinal) || name.Contains("scale_shift_table", StringComparison.Ordinal))
            return GgmlType.F32;
        int rowLength = shape.Length > 4 ? shape[1..].Aggregate(1, (a, b) => a * b) : shape[^1];
        if (rowLength % GgmlTypes.BlockSize(target) == 0) return target;
        return target == GgmlType.BF16 ? GgmlType.BF16 : GgmlType.F16;
    }

    /// <summary>Converts <paramref name="input"/> to <paramref name="output"/> (written whole or not at all) and lists what it wrote.</summary>
    public static IReadOnlyList<ConvertedTensor> Convert(string input, string output, GgmlType target, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        if (!Targets.Contains(target))
            throw new ArgumentException($"{GgmlTypes.Name(target)} is not a conversion target (one of {string.Join(", ", Targets.Select(GgmlTypes.Name))})", nameof(target));
        if (!File.Exists(input) && !Directory.Exists(input)) throw new ModelLoadException($"{input}: file not found");
        using var reader = Reader.Open(input);
        var written = new List<ConvertedTensor>();
        var tensors = new List<GgufWriterTensor>();
        var metadata = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", new GgufValue(GgufValueType.String, "wan")),
            new("general.source", new GgufValue(GgufValueType.String, Path.GetFileName(Path.GetFullPath(input).TrimEnd(Path.DirectorySeparatorChar)))),
            new("sora.converted_type", new GgufValue(GgufValueType.String, GgmlTypes.Name(target))),
        };
        foreach (var (name, shape) in reader.Tensors)
        {
            var type = TypeFor(name, shape, target);
            int[] stored = shape.Length > 4 ? [shape[0], shape[1..].Aggregate(1, (a, b) => a * b)] : shape;
            if (shape.Length > 4)
                metadata.Add(new($"comfy.gguf.orig_shape.{name}", new GgufValue(GgufValueType.Array, shape.ToArray(), GgufValueType.Int32)));
            written.Add(new ConvertedTensor(name, type, shape));
            string tensorName = name;
            tensors.Add(new GgufWriterTensor(name, type, stored, () =>
            {
                ct.ThrowIfCancellationRequested();
                var values = reader.Values(tensorName);
                var bytes = new byte[GgmlTypes.ByteCount(type, values.LongLength)];
                GgmlQuantize.Blocks(type, values, bytes);
                return bytes;
            }));
        }
        GgufWriter.Write(output, metadata, tensors);
        return written;
    }

    /// <summary>The input's tensors in file order, decoded to f32 one at a time.</summary>
    private sealed class Reader : IDisposable
    {
        private readonly SafetensorsCheckpoint? _safetensors;
        private readonly GgufFile? _gguf;

        private Reader(SafetensorsCheckpoint? safetensors, GgufFile? gguf)
        {
            _safetensors = safetensors;
            _gguf = gguf;
        }

        public static Reader Open(string path)
        {
            if (path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) return new Reader(null, GgufFile.Open(path));
            try { return new Reader(SafetensorsCheckpoint.Open(path), null); }
            catch (SafetensorsException e) { throw new ModelLoadException(e.Message, e); }
        }

        public IEnumerable<(string Name, int[] Shape)> Tensors => _gguf is not null
            ? _gguf.Tensors.Select(t => (t.Name, t.Shape))
            : _safetensors!.Names.Select(n => (n, _safetensors.Describe(n).Shape));

        public float[] Values(string name)
        {
            if (_gguf is not null) return _gguf.Get(name).ToFloatArray();
            return _safetensors!.Get(name).ToFloatArray();
        }

        public void Dispose()
        {
            _safetensors?.Dispose();
            _gguf?.Dispose();
        }
    }
}
