using System.Buffers.Binary;
using System.Text.Json;

namespace Sora.Tests.Text;

/// <summary>Paths of the fixtures and test data, and a reader for the fixtures' F32 and I64 safetensors.</summary>
internal static class TextFixtures
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "fixtures", "wan-small");
    public static string TokenizerDir => Path.Combine(Root, "model", "tokenizer");
    public static string TextEncoderDir => Path.Combine(Root, "model", "text_encoder");

    /// <summary>tests/Text/data, copied beside the test binary.</summary>
    public static string DataDir => Path.Combine(AppContext.BaseDirectory, "Text", "data");

    /// <summary>
    /// Reads every tensor of a safetensors file as (shape, values as double). The runtime's reader does not
    /// take I64 (the fixtures store token ids and masks so), hence this small reader for test inputs.
    /// </summary>
    public static Dictionary<string, (int[] Shape, double[] Values)> ReadSafetensors(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        int dataStart = 8 + (int)headerLength;
        var result = new Dictionary<string, (int[], double[])>();
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            string dtype = entry.Value.GetProperty("dtype").GetString()!;
            int[] shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var data = bytes.AsSpan(dataStart + (int)offsets[0], (int)(offsets[1] - offsets[0]));
            double[] values = dtype switch
            {
                "F32" => ReadFloat32(data),
                "I64" => ReadInt64(data),
                _ => throw new NotSupportedException($"{path}: {entry.Name} has dtype {dtype}"),
            };
            result[entry.Name] = (shape, values);
        }
        return result;
    }

    private static double[] ReadFloat32(ReadOnlySpan<byte> data)
    {
        var values = new double[data.Length / 4];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(data.Slice(4 * i));
        return values;
    }

    private static double[] ReadInt64(ReadOnlySpan<byte> data)
    {
        var values = new double[data.Length / 8];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadInt64LittleEndian(data.Slice(8 * i));
        return values;
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> (float values) as a safetensors file storing each in
    /// <paramref name="dtype"/> ("F32" or "BF16", round to nearest even).
    /// </summary>
    public static void WriteSafetensors(string path, IReadOnlyDictionary<string, (int[] Shape, double[] Values)> tensors, string dtype)
    {
        int size = dtype == "BF16" ? 2 : 4;
        var header = new System.Text.Json.Nodes.JsonObject();
        long offset = 0;
        foreach (var (name, (shape, values)) in tensors)
        {
            header[name] = new System.Text.Json.Nodes.JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new System.Text.Json.Nodes.JsonArray(shape.Select(d => (System.Text.Json.Nodes.JsonNode?)d).ToArray()),
                ["data_offsets"] = new System.Text.Json.Nodes.JsonArray(offset, offset + values.Length * size),
            };
            offset += values.Length * size;
        }
        byte[] json = System.Text.Encoding.UTF8.GetBytes(header.ToJsonString());
        using var file = File.Create(path);
        Span<byte> buffer = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(buffer, json.Length);
        file.Write(buffer);
        file.Write(json);
        foreach (var (_, (_, values)) in tensors)
            foreach (double v in values)
            {
                if (size == 2) BinaryPrimitives.WriteUInt16LittleEndian(buffer, Sora.Runtime.BFloat16.FromFloat((float)v));
                else BinaryPrimitives.WriteSingleLittleEndian(buffer, (float)v);
                file.Write(buffer[..size]);
            }
    }

    /// <summary>‖a − b‖ / ‖b‖ in float64; NaN anywhere gives NaN (which fails any bound).</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        if (actual.Length != expected.Length) throw new ArgumentException($"{actual.Length} values vs {expected.Length} expected");
        double diff = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = actual[i] - expected[i];
            diff += d * d;
            norm += expected[i] * expected[i];
        }
        return Math.Sqrt(diff) / Math.Sqrt(norm);
    }
}
