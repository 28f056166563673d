using System.Buffers.Binary;
using System.Text.Json;

namespace Sora.Runtime.Safetensors;

/// <summary>
/// The validated header of a safetensors file: 8-byte little-endian length N, N bytes of UTF-8 JSON (writers
/// pad it with spaces), then the data section. Parsed with a forward-only reader straight from the mapped bytes,
/// so what is allocated is bounded by the header's real size, never by numbers the header claims. Checks: N
/// within the file and a 100 MB cap; well-formed JSON object; no duplicate names or keys; each entry an object
/// with a supported dtype, a shape of non-negative ints and [begin, end] offsets inside the data section whose
/// length equals elements × dtype size; and, as the format requires, the tensors tile the data section exactly
/// (no overlap, no hole, no trailing bytes).
/// </summary>
internal sealed class SafetensorsHeader
{
    internal const long MaxHeaderBytes = 100L * 1024 * 1024;
    private const string MetadataKey = "__metadata__";

    private SafetensorsHeader(Dictionary<string, TensorEntry> entries, IReadOnlyDictionary<string, string> metadata, long dataStart)
    {
        Entries = entries;
        Metadata = metadata;
        DataStart = dataStart;
    }

    public Dictionary<string, TensorEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>File offset of the data section.</summary>
    public long DataStart { get; }

    public static unsafe SafetensorsHeader Parse(string path, byte* file, long fileLength)
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(file, 8));
        if (n > MaxHeaderBytes)
            throw new SafetensorsException(path, null, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit (not a safetensors file?)");
        if ((long)n > fileLength - 8)
            throw new SafetensorsException(path, null, $"header length {n} runs past the end of the {fileLength}-byte file (truncated?)");
        long dataStart = 8 + (long)n;
        var parser = new Parser(path, fileLength - dataStart);
        try
        {
            var (entries, metadata) = parser.Parse(new ReadOnlySpan<byte>(file + 8, (int)n));
            return new SafetensorsHeader(entries, metadata, dataStart);
        }
        catch (JsonException e)
        {
            throw new SafetensorsException(path, null, "header is not valid JSON: " + e.Message, e);
        }
    }

    private sealed class Parser(string path, long dataLength)
    {
        public (Dictionary<string, TensorEntry>, IReadOnlyDictionary<string, string>) Parse(ReadOnlySpan<byte> json)
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 8 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw Error(null, "header is not a JSON object");
            var entries = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
            Dictionary<string, string>? metadata = null;
            while (Next(ref reader) != JsonTokenType.EndObject)
            {
                string name = String(ref reader, null);
                if (name == MetadataKey)
                {
                    if (metadata is not null) throw Error(null, "duplicate __metadata__");
                    metadata = ReadMetadata(ref reader);
                    continue;
                }
                if (entries.ContainsKey(name)) throw Error(name, "duplicate tensor name");
                entries.Add(name, ReadEntry(ref reader, name));
            }
            if (reader.Read()) throw Error(null, "content after the header object");
            CheckTiling(entries);
            return (entries, metadata ?? new Dictionary<string, string>());
        }

        private Dictionary<string, string> ReadMetadata(ref Utf8JsonReader reader)
        {
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var token = Next(ref reader);
            if (token == JsonTokenType.Null) return metadata;
            if (token != JsonTokenType.StartObject) throw Error(null, "__metadata__ is not an object");
            while (Next(ref reader) != JsonTokenType.EndObject)
            {
                string key = String(ref reader, null);
                if (Next(ref reader) != JsonTokenType.String) throw Error(null, $"metadata '{Shorten(key)}' is not a string");
                if (!metadata.TryAdd(key, String(ref reader, null))) throw Error(null, $"duplicate metadata key '{Shorten(key)}'");
            }
            return metadata;
        }

        private TensorEntry ReadEntry(ref Utf8JsonReader reader, string name)
        {
            if (Next(ref reader) != JsonTokenType.StartObject) throw Error(name, "entry is not an object");
            string? dtypeName = null;
            List<int>? shape = null;
            long[]? offsets = null;
            while (Next(ref reader) != JsonTokenType.EndObject)
            {
                string key = String(ref reader, name);
                var token = Next(ref reader);
                switch (key)
                {
                    case "dtype":
                        if (dtypeName is not null) throw Error(name, "duplicate key dtype");
                        if (token != JsonTokenType.String) throw Error(name, "dtype is not a string");
                        dtypeName = String(ref reader, name);
                        break;
                    case "shape":
                        if (shape is not null) throw Error(name, "duplicate key shape");
                        shape = new List<int>();
                        foreach (long d in Integers(ref reader, name, "shape", int.MaxValue)) shape.Add((int)d);
                        break;
                    case "data_offsets":
                        if (offsets is not null) throw Error(name, "duplicate key data_offsets");
                        var list = Integers(ref reader, name, "data_offsets", long.MaxValue);
                        if (list.Count != 2) throw Error(name, "data_offsets must be [begin, end]");
                        offsets = list.ToArray();
                        break;
                    default:
                        reader.Skip(); // unknown keys are ignored, as the reference reader does
                        break;
                }
            }
            if (dtypeName is null) throw Error(name, "missing dtype");
            if (shape is null) throw Error(name, "missing shape");
            if (offsets is null) throw Error(name, "missing data_offsets");
            if (!DTypes.TryParseSafetensorsName(dtypeName, out var dtype))
                throw Error(name, $"dtype {Shorten(dtypeName)} is not supported (F32, F16, BF16, F8_E4M3 and F8_E5M2 are)");

            var (begin, end) = (offsets[0], offsets[1]);
            if (end < begin) throw Error(name, $"data_offsets [{begin}, {end}] end before they begin");
            if (end > dataLength) throw Error(name, $"data [{begin}, {end}) runs past the {dataLength}-byte data section (truncated file?)");
            long bytes = end - begin, size = DTypes.SizeOf(dtype), elements = 1;
            if (shape.Contains(0)) elements = 0;
            else foreach (int d in shape) elements = elements > bytes / d ? long.MaxValue : elements * d; // saturates: then it cannot match
            if (elements == long.MaxValue || elements * size != bytes)
                throw Error(name, $"shape [{string.Join(", ", shape.Take(16))}{(shape.Count > 16 ? ", ..." : "")}] of {dtypeName} does not fit the {bytes} bytes of its data_offsets");
            return new TensorEntry(name, dtype, shape.ToArray(), begin, end);
        }

        /// <summary>The elements of a JSON array of integers in [0, max]; the reader is on StartArray.</summary>
        private List<long> Integers(ref Utf8JsonReader reader, string name, string key, long max)
        {
            if (reader.TokenType != JsonTokenType.StartArray) throw Error(name, $"{key} is not an array");
            var values = new List<long>();
            while (Next(ref reader) != JsonTokenType.EndArray)
            {
                if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long v) || v < 0 || v > max)
                    throw Error(name, $"{key} entries must be integers in [0, {max}]");
                values.Add(v);
            }
            return values;
        }

        private void CheckTiling(Dictionary<string, TensorEntry> entries)
        {
            var sorted = entries.Values.ToArray();
            Array.Sort(sorted, (a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            long position = 0;
            TensorEntry? previous = null;
            foreach (var e in sorted)
            {
                if (e.Begin < position) throw Error(e.Name, $"data [{e.Begin}, {e.End}) overlaps tensor '{Shorten(previous!.Name)}' [{previous.Begin}, {previous.End})");
                if (e.Begin > position) throw Error(e.Name, $"bytes [{position}, {e.Begin}) before this tensor belong to no tensor (holes are not allowed)");
                position = e.End;
                previous = e;
            }
            if (position != dataLength)
                throw Error(null, $"the tensors cover {position} bytes but the data section holds {dataLength} (trailing bytes)");
        }

        private static JsonTokenType Next(ref Utf8JsonReader reader)
        {
            if (!reader.Read()) throw new JsonException("unexpected end of the header");
            return reader.TokenType;
        }

        private string String(ref Utf8JsonReader reader, string? tensor)
        {
            try { return reader.GetString()!; }
            catch (InvalidOperationException e) { throw new SafetensorsException(path, tensor, "header holds a string that is not valid UTF-8", e); }
        }

        private SafetensorsException Error(string? tensor, string problem) => new(path, tensor, problem);

        private static string Shorten(string s) => s.Length <= 64 ? s : s[..64] + "...";
    }
}
