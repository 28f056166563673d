using System.Buffers.Binary;
using System.Text;

namespace Sora.Runtime.Gguf;

/// <summary>A tensor to write: PyTorch-order shape (written as ne reversed) and a function giving its encoded bytes, called once while writing.</summary>
public sealed record GgufWriterTensor(string Name, GgmlType Type, int[] Shape, Func<ReadOnlyMemory<byte>> Data);

/// <summary>
/// Writes a GGUF v3 file in the layout <see cref="GgufHeader"/> reads (and ggml writes): header, metadata, tensor
/// infos, padding to the alignment, then each tensor's data at the aligned running offset. Tensors are encoded one
/// at a time as they are written, so a model is never held whole; the file appears only when complete (written
/// beside it, then renamed), so a failure leaves no partial output.
/// </summary>
public static class GgufWriter
{
    public static void Write(string path, IEnumerable<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<GgufWriterTensor> tensors, int alignment = GgufHeader.DefaultAlignment)
    {
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "alignment must be a power of two");
        var kvs = metadata.ToList();
        if (alignment != GgufHeader.DefaultAlignment && kvs.All(kv => kv.Key != GgufHeader.AlignmentKey))
            kvs.Add(KeyValuePair.Create(GgufHeader.AlignmentKey, new GgufValue(GgufValueType.UInt32, (uint)alignment)));
        var offsets = Layout(tensors, alignment);

        string temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
            {
                w.Write("GGUF"u8);
                w.Write(3u);
                w.Write((ulong)tensors.Count);
                w.Write((ulong)kvs.Count);
                foreach (var (key, value) in kvs)
                {
                    String(w, key);
                    Value(w, key, value);
                }
                for (int i = 0; i < tensors.Count; i++)
                {
                    var t = tensors[i];
                    String(w, t.Name);
                    w.Write((uint)t.Shape.Length);
                    for (int d = t.Shape.Length - 1; d >= 0; d--) w.Write((ulong)t.Shape[d]);
                    w.Write((uint)t.Type);
                    w.Write((ulong)offsets[i]);
                }
                w.Flush();
                Pad(stream, alignment);
                long dataStart = stream.Position;
                for (int i = 0; i < tensors.Count; i++)
                {
                    var t = tensors[i];
                    var data = t.Data();
                    long expected = GgmlTypes.ByteCount(t.Type, t.Shape.Aggregate(1L, (a, b) => a * b));
                    if (data.Length != expected) throw new ArgumentException($"tensor '{t.Name}': {data.Length} bytes given, {GgmlTypes.Name(t.Type)} [{string.Join(", ", t.Shape)}] takes {expected}");
                    Pad(stream, alignment);
                    if (stream.Position - dataStart != offsets[i]) throw new InvalidOperationException("GGUF writer lost its offsets");
                    stream.Write(data.Span);
                }
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Checks each tensor and returns its aligned offset in the data section.</summary>
    private static long[] Layout(IReadOnlyList<GgufWriterTensor> tensors, int alignment)
    {
        var offsets = new long[tensors.Count];
        var names = new HashSet<string>(StringComparer.Ordinal);
        long running = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            if (!names.Add(t.Name)) throw new ArgumentException($"tensor '{t.Name}' is listed twice");
            if (!GgmlTypes.IsSupported(t.Type)) throw new ArgumentException($"tensor '{t.Name}': ggml type id {(uint)t.Type} is not supported");
            if (t.Shape.Length > GgufHeader.MaxDims || t.Shape.Any(d => d < 0))
                throw new ArgumentException($"tensor '{t.Name}': shape [{string.Join(", ", t.Shape)}] must have at most {GgufHeader.MaxDims} non-negative dims (store it flattened, with comfy.gguf.orig_shape)");
            int rowLength = t.Shape.Length == 0 ? 1 : t.Shape[^1];
            if (rowLength % GgmlTypes.BlockSize(t.Type) != 0)
                throw new ArgumentException($"tensor '{t.Name}': row length {rowLength} is not a multiple of the {GgmlTypes.Name(t.Type)} block size {GgmlTypes.BlockSize(t.Type)}");
            offsets[i] = running;
            long bytes = GgmlTypes.ByteCount(t.Type, t.Shape.Aggregate(1L, (a, b) => a * b));
            running = checked((running + bytes + alignment - 1) / alignment * alignment);
        }
        return offsets;
    }

    private static void Pad(Stream stream, int alignment)
    {
        long pad = (alignment - stream.Position % alignment) % alignment;
        for (long i = 0; i < pad; i++) stream.WriteByte(0);
    }

    private static void String(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void Value(BinaryWriter w, string key, GgufValue v)
    {
        w.Write((uint)v.Type);
        if (!v.IsArray)
        {
            Scalar(w, key, v.Type, v.Value);
            return;
        }
        if (v.ElementType == GgufValueType.Array || v.Value is not Array items) throw new ArgumentException($"metadata '{key}': an array value must be a typed array of scalars");
        w.Write((uint)v.ElementType);
        w.Write((ulong)items.Length);
        foreach (var item in items) Scalar(w, key, v.ElementType, item!);
    }

    private static void Scalar(BinaryWriter w, string key, GgufValueType type, object value)
    {
        switch (type, value)
        {
            case (GgufValueType.UInt8, byte x): w.Write(x); break;
            case (GgufValueType.Int8, sbyte x): w.Write(x); break;
            case (GgufValueType.UInt16, ushort x): w.Write(x); break;
            case (GgufValueType.Int16, short x): w.Write(x); break;
            case (GgufValueType.UInt32, uint x): w.Write(x); break;
            case (GgufValueType.Int32, int x): w.Write(x); break;
            case (GgufValueType.Float32, float x): w.Write(x); break;
            case (GgufValueType.Bool, bool x): w.Write(x ? (byte)1 : (byte)0); break;
            case (GgufValueType.String, string x): String(w, x); break;
            case (GgufValueType.UInt64, ulong x): w.Write(x); break;
            case (GgufValueType.Int64, long x): w.Write(x); break;
            case (GgufValueType.Float64, double x): w.Write(x); break;
            default: throw new ArgumentException($"metadata '{key}': a {value.GetType().Name} is not a {type} value");
        }
    }
}
