using System.Buffers.Binary;
using System.Text;

namespace Sora.Runtime.Gguf;

/// <summary>
/// The validated header of a GGUF v2/v3 file (little-endian): magic "GGUF", version, tensor count, metadata count,
/// the metadata key/values, the tensor infos (name, n_dims, ne[n_dims] innermost first, type id, offset), then
/// padding to the alignment (metadata "general.alignment", default 32) where the data section begins. Every count
/// and length is checked against the bytes left in the file before anything is allocated for it, so what is
/// allocated is bounded by the file's size. Checks: known version; unique keys and tensor names; valid UTF-8;
/// no nested arrays; the alignment a power of two; at most 4 dims, each within int; a supported type whose block
/// size divides the row length ne[0]; offsets aligned, inside the data section, and tensors not overlapping;
/// ComfyUI-GGUF's "comfy.gguf.orig_shape.NAME" (an integer array) holding as many elements as the tensor.
/// </summary>
internal sealed class GgufHeader
{
    private const uint Magic = 0x4655_4747; // "GGUF" read as a little-endian uint32
    internal const int MaxStringKeyBytes = 64 * 1024;
    internal const int MaxDims = 4;
    internal const string AlignmentKey = "general.alignment";
    internal const string OrigShapePrefix = "comfy.gguf.orig_shape.";
    internal const int DefaultAlignment = 32;

    private GgufHeader(uint version, long alignment, long dataStart, Dictionary<string, GgufValue> metadata, List<GgufTensorInfo> tensors)
    {
        Version = version;
        Alignment = alignment;
        DataStart = dataStart;
        Metadata = metadata;
        Tensors = tensors;
    }

    public uint Version { get; }
    public long Alignment { get; }
    public long DataStart { get; }
    public Dictionary<string, GgufValue> Metadata { get; }
    public List<GgufTensorInfo> Tensors { get; }

    public static unsafe GgufHeader Parse(string path, byte* file, long length)
    {
        var r = new Reader(path, file, length);
        if (length < 4) throw r.Error(null, $"file is {length} bytes, too short for the GGUF magic");
        uint magic = r.U32("magic");
        if (magic != Magic) throw r.Error(null, $"not a GGUF file (magic 0x{magic:X8}, expected \"GGUF\")");
        uint version = r.U32("version");
        if (version == 1) throw r.Error(null, "GGUF version 1 is not supported (versions 2 and 3 are)");
        if (version != 2 && version != 3)
            throw r.Error(null, BinaryPrimitives.ReverseEndianness(version) is 2 or 3
                ? "big-endian GGUF files are not supported"
                : $"unknown GGUF version {version} (versions 2 and 3 are supported)");
        ulong tensorCount = r.U64("tensor count"), kvCount = r.U64("metadata count");
        // the smallest metadata entry is 13 bytes (key length, type, a one-byte value), the smallest tensor info 24
        if (kvCount > (ulong)r.Remaining / 13) throw r.Error(null, $"header claims {kvCount} metadata entries, more than the file's {length} bytes can hold");
        if (tensorCount > (ulong)r.Remaining / 24) throw r.Error(null, $"header claims {tensorCount} tensors, more than the file's {length} bytes can hold");

        var metadata = new Dictionary<string, GgufValue>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = r.String(null, "metadata key", MaxStringKeyBytes);
            var value = r.Value(key);
            if (!metadata.TryAdd(key, value)) throw r.Error(null, $"duplicate metadata key '{Shorten(key)}'");
        }
        long alignment = ReadAlignment(r, metadata);

        var tensors = new List<GgufTensorInfo>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            var info = r.TensorInfo();
            if (!names.Add(info.Name)) throw r.Error(info.Name, "duplicate tensor name");
            tensors.Add(info);
        }

        long dataStart = (r.Position + alignment - 1) / alignment * alignment;
        if (tensors.Count > 0 && dataStart > length)
            throw r.Error(null, $"the data section would begin at byte {dataStart}, past the end of the {length}-byte file (truncated?)");
        long dataLength = Math.Max(0, length - dataStart);
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            if (t.Offset % alignment != 0) throw r.Error(t.Name, $"data offset {t.Offset} is not a multiple of the alignment {alignment}");
            if (t.Offset > dataLength || t.ByteLength > dataLength - t.Offset)
                throw r.Error(t.Name, $"data [{t.Offset}, {t.Offset + t.ByteLength}) runs past the {dataLength}-byte data section (truncated file?)");
            tensors[i] = WithOrigShape(r, t, metadata);
        }
        CheckOverlap(r, tensors);
        return new GgufHeader(version, alignment, dataStart, metadata, tensors);
    }

    private static long ReadAlignment(Reader r, Dictionary<string, GgufValue> metadata)
    {
        if (!metadata.TryGetValue(AlignmentKey, out var v)) return DefaultAlignment;
        if (v.Type != GgufValueType.UInt32) throw r.Error(null, $"{AlignmentKey} is {v.Describe()}, not UInt32");
        uint a = (uint)v.Value;
        if (a == 0 || (a & (a - 1)) != 0) throw r.Error(null, $"{AlignmentKey} = {a} is not a power of two");
        return a;
    }

    /// <summary>Applies ComfyUI-GGUF's reshape metadata: the tensor's logical (PyTorch-order) shape when it is stored flattened.</summary>
    private static GgufTensorInfo WithOrigShape(Reader r, GgufTensorInfo t, Dictionary<string, GgufValue> metadata)
    {
        if (!metadata.TryGetValue(OrigShapePrefix + t.Name, out var v)) return t;
        if (!v.IsArray || v.ElementType is not (GgufValueType.Int32 or GgufValueType.Int64))
            throw r.Error(t.Name, $"{OrigShapePrefix}{Shorten(t.Name)} is {v.Describe()}, not an array of Int32");
        var dims = v.AsInt64Array();
        if (dims.Length > 8) throw r.Error(t.Name, $"{OrigShapePrefix}{Shorten(t.Name)} has {dims.Length} dims (at most 8)");
        long elements = 1;
        foreach (long d in dims)
        {
            if (d < 0 || d > int.MaxValue) throw r.Error(t.Name, $"{OrigShapePrefix}{Shorten(t.Name)} holds the dimension {d}");
            elements = d == 0 || elements <= long.MaxValue / d ? elements * d : -1;
            if (elements < 0) break;
        }
        if (elements != t.ElementCount)
            throw r.Error(t.Name, $"{OrigShapePrefix}{Shorten(t.Name)} = [{string.Join(", ", dims)}] does not hold the tensor's {t.ElementCount} elements");
        return t with { Shape = Array.ConvertAll(dims, d => (int)d) };
    }

    private static void CheckOverlap(Reader r, List<GgufTensorInfo> tensors)
    {
        var sorted = tensors.ToArray();
        Array.Sort(sorted, (a, b) => a.Offset.CompareTo(b.Offset));
        for (int i = 1; i < sorted.Length; i++)
        {
            var (prev, t) = (sorted[i - 1], sorted[i]);
            if (t.Offset < prev.Offset + prev.ByteLength)
                throw r.Error(t.Name, $"data [{t.Offset}, {t.Offset + t.ByteLength}) overlaps tensor '{Shorten(prev.Name)}' [{prev.Offset}, {prev.Offset + prev.ByteLength})");
        }
    }

    private static string Shorten(string s) => s.Length <= 64 ? s : s[..64] + "...";

    /// <summary>A forward-only little-endian reader over the mapped file that never reads past its end.</summary>
    private sealed unsafe class Reader(string path, byte* file, long length)
    {
        private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

        public long Position { get; private set; }
        public long Remaining => length - Position;

        public GgufException Error(string? tensor, string problem) => new(path, tensor, problem);

        private ReadOnlySpan<byte> Take(long n, string what, string? tensor)
        {
            if (n > Remaining) throw Error(tensor, $"the file ends inside the {what} at byte {Position} (truncated?)");
            var span = new ReadOnlySpan<byte>(file + Position, checked((int)n));
            Position += n;
            return span;
        }

        public uint U32(string what, string? tensor = null) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what, tensor));
        public ulong U64(string what, string? tensor = null) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what, tensor));

        /// <summary>A length-prefixed UTF-8 string; <paramref name="what"/> (and <paramref name="key"/>) only name it in errors.</summary>
        public string String(string? tensor, string what, long maxBytes, string? key = null)
        {
            ulong n = U64("string length", tensor);
            if (n > (ulong)maxBytes) throw Error(tensor, $"{Name(what, key)} is {n} bytes long, over the {maxBytes}-byte limit");
            if (n > (ulong)Remaining) throw Error(tensor, $"{Name(what, key)} of {n} bytes runs past the end of the file (truncated?)");
            var bytes = Take((long)n, "string", tensor);
            if (n == 0) return "";
            try { return Utf8.GetString(bytes); }
            catch (DecoderFallbackException e) { throw new GgufException(path, tensor, $"{Name(what, key)} at byte {Position - (long)n} is not valid UTF-8", e); }
        }

        private static string Name(string what, string? key) => key is null ? what : $"metadata '{Shorten(key)}' {what}";

        public GgufValue Value(string key)
        {
            uint type = U32("value type");
            if (type > (uint)GgufValueType.Float64) throw Error(null, $"metadata '{Shorten(key)}' has unknown value type {type}");
            var t = (GgufValueType)type;
            if (t != GgufValueType.Array) return new GgufValue(t, Scalar(t, key));
            uint elementType = U32("array element type");
            if (elementType > (uint)GgufValueType.Float64) throw Error(null, $"metadata '{Shorten(key)}' is an array of unknown type {elementType}");
            var e = (GgufValueType)elementType;
            if (e == GgufValueType.Array) throw Error(null, $"metadata '{Shorten(key)}' is an array of arrays (not supported)");
            ulong count = U64("array length");
            int size = e == GgufValueType.String ? 8 : ScalarSize(e);
            if (count > (ulong)(Remaining / size)) throw Error(null, $"metadata '{Shorten(key)}' claims {count} elements, more than the rest of the file holds");
            return new GgufValue(t, Array(e, (int)count, key), e);
        }

        private static int ScalarSize(GgufValueType t) => t switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            _ => 8,
        };

        private object Scalar(GgufValueType t, string key)
        {
            if (t == GgufValueType.String) return String(null, "string", long.MaxValue, key);
            var b = Take(ScalarSize(t), "metadata value", null);
            return t switch
            {
                GgufValueType.UInt8 => b[0],
                GgufValueType.Int8 => (sbyte)b[0],
                GgufValueType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(b),
                GgufValueType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(b),
                GgufValueType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(b),
                GgufValueType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(b),
                GgufValueType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(b),
                GgufValueType.Bool => Bool(b[0], key),
                GgufValueType.UInt64 => BinaryPrimitives.ReadUInt64LittleEndian(b),
                GgufValueType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(b),
                _ => BinaryPrimitives.ReadDoubleLittleEndian(b),
            };
        }

        private bool Bool(byte b, string key) => b <= 1 ? b == 1 : throw Error(null, $"metadata '{Shorten(key)}' holds a bool of value {b} (0 or 1 expected)");

        /// <summary>A typed array of <paramref name="count"/> elements (already checked to fit in the rest of the file).</summary>
        private System.Array Array(GgufValueType e, int count, string key)
        {
            switch (e)
            {
                case GgufValueType.String:
                    var strings = new string[count];
                    for (int i = 0; i < count; i++) strings[i] = String(null, "string", long.MaxValue, key);
                    return strings;
                case GgufValueType.Bool:
                    var bools = new bool[count];
                    var raw = Take(count, "metadata array", null);
                    for (int i = 0; i < count; i++) bools[i] = Bool(raw[i], key);
                    return bools;
                case GgufValueType.UInt8: return Numbers<byte>(count);
                case GgufValueType.Int8: return Numbers<sbyte>(count);
                case GgufValueType.UInt16: return Numbers<ushort>(count);
                case GgufValueType.Int16: return Numbers<short>(count);
                case GgufValueType.UInt32: return Numbers<uint>(count);
                case GgufValueType.Int32: return Numbers<int>(count);
                case GgufValueType.Float32: return Numbers<float>(count);
                case GgufValueType.UInt64: return Numbers<ulong>(count);
                case GgufValueType.Int64: return Numbers<long>(count);
                default: return Numbers<double>(count);
            }
        }

        private T[] Numbers<T>(int count) where T : unmanaged
        {
            var values = new T[count];
            var bytes = Take((long)count * sizeof(T), "metadata array", null);
            bytes.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("GGUF reading needs a little-endian machine");
            return values;
        }

        public GgufTensorInfo TensorInfo()
        {
            string name = String(null, "tensor name", MaxStringKeyBytes);
            uint nDims = U32("dimension count", name);
            if (nDims > MaxDims) throw Error(name, $"has {nDims} dimensions (at most {MaxDims})");
            var ne = new long[nDims];
            long elements = 1;
            for (int i = 0; i < nDims; i++)
            {
                ulong d = U64("dimensions", name);
                if (d > int.MaxValue) throw Error(name, $"dimension ne[{i}] = {d} is over {int.MaxValue}");
                ne[i] = (long)d;
                elements = ne[i] == 0 || elements <= long.MaxValue / ne[i] ? elements * ne[i] : -1;
                if (elements < 0) throw Error(name, $"ne [{string.Join(", ", ne[..(i + 1)])}] holds more than {long.MaxValue} elements");
            }
            uint typeId = U32("type id", name);
            var type = (GgmlType)typeId;
            if (!GgmlTypes.IsSupported(type))
                throw Error(name, $"ggml type id {typeId}{KnownName(typeId)} is not supported (f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K are)");
            ulong offset = U64("data offset", name);
            if (offset > long.MaxValue) throw Error(name, $"data offset {offset} is out of range");
            long rowLength = nDims == 0 ? 1 : ne[0];
            int block = GgmlTypes.BlockSize(type);
            if (rowLength % block != 0)
                throw Error(name, $"row length ne[0] = {rowLength} is not a multiple of the {GgmlTypes.Name(type)} block size {block}");
            long bytes = GgmlTypes.ByteCount(type, elements);
            if (bytes < 0) throw Error(name, $"{elements} elements of {GgmlTypes.Name(type)} overflow the byte count");
            var shape = new int[nDims];
            for (int i = 0; i < nDims; i++) shape[i] = (int)ne[nDims - 1 - i];
            return new GgufTensorInfo(name, type, ne, shape, (long)offset, bytes);
        }

        /// <summary>ggml's name of a type id this reader does not decode, for the error message.</summary>
        private static string KnownName(uint id) => id switch
        {
            9 => " (q8_1)", 15 => " (q8_K)", 16 => " (iq2_xxs)", 17 => " (iq2_xs)", 18 => " (iq3_xxs)", 19 => " (iq1_s)",
            20 => " (iq4_nl)", 21 => " (iq3_s)", 22 => " (iq2_s)", 23 => " (iq4_xs)", 24 => " (i8)", 25 => " (i16)", 26 => " (i32)",
            27 => " (i64)", 28 => " (f64)", 29 => " (iq1_m)", 34 => " (tq1_0)", 35 => " (tq2_0)", 39 => " (mxfp4)",
            _ => "",
        };
    }
}
