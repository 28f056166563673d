namespace Sora.Runtime.Gguf;

/// <summary>
/// One tensor's entry in a GGUF file. <see cref="Ne"/> is ggml's order (ne[0], the row length, first);
/// <see cref="Shape"/> is the PyTorch-order shape: ne reversed, or the "comfy.gguf.orig_shape.NAME" metadata for a
/// tensor stored flattened. <see cref="Offset"/> is relative to the data section.
/// </summary>
public sealed record GgufTensorInfo(string Name, GgmlType Type, long[] Ne, int[] Shape, long Offset, long ByteLength)
{
    public long ElementCount { get; } = Ne.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape as stored, in PyTorch order (ne reversed); differs from <see cref="Shape"/> only for reshaped tensors.</summary>
    public int[] StoredShape => Ne.Reverse().Select(d => (int)d).ToArray();
}

/// <summary>
/// One GGUF file, memory-mapped. The header is validated completely on <see cref="Open"/> (see
/// <see cref="GgufHeader"/>), so every later access stays inside the file; tensor data is read only when touched.
/// Quantised tensors are handed out as <see cref="GgufTensor"/> handles that expand any range of elements or rows
/// on demand; F32/F16/BF16 tensors can also be had as host tensor views (<see cref="GetDense"/>). Disposing the
/// file invalidates both: a late access throws ObjectDisposedException instead of reading unmapped memory.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    private readonly MappedFile _file;
    private readonly Dictionary<string, GgufTensorInfo> _byName;

    private GgufFile(string path, MappedFile file, GgufHeader header)
    {
        Path = path;
        _file = file;
        Version = header.Version;
        Alignment = header.Alignment;
        DataStart = header.DataStart;
        Metadata = header.Metadata;
        Tensors = header.Tensors;
        _byName = header.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    public string Path { get; }
    public long Length => _file.Length;
    public uint Version { get; }

    /// <summary>The data alignment: "general.alignment", or 32 when the file does not set it.</summary>
    public long Alignment { get; }

    /// <summary>File offset of the data section.</summary>
    public long DataStart { get; }

    /// <summary>Metadata in file order.</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata { get; }

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    public bool IsDisposed => _file.IsDisposed;

    public bool Contains(string name) => _byName.ContainsKey(name);

    public GgufTensorInfo GetInfo(string name)
        => _byName.TryGetValue(name, out var t) ? t : throw new GgufException(Path, name, "no such tensor in this file");

    public static GgufFile Open(string path)
    {
        var file = MappedFile.Open(path, 24, length => $"file is {length} bytes, shorter than a GGUF header (24 bytes)",
            (problem, cause) => new GgufException(path, null, problem, cause));
        try
        {
            return new GgufFile(path, file, GgufHeader.Parse(path, file.Base, file.Length));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>A handle on the tensor's encoded data that dequantises on demand (valid while this file is open).</summary>
    public GgufTensor Get(string name) => new(this, GetInfo(name));

    /// <summary>An F32, F16 or BF16 tensor as a host view into the mapped file, in its logical shape.</summary>
    public Tensor GetDense(string name)
    {
        var t = GetInfo(name);
        var dtype = t.Type switch
        {
            GgmlType.F32 => DType.F32,
            GgmlType.F16 => DType.F16,
            GgmlType.BF16 => DType.BF16,
            _ => throw new GgufException(Path, name, $"is {GgmlTypes.Name(t.Type)}, not a dense type (f32, f16, bf16): use Get and dequantise"),
        };
        return new Tensor(_file.Storage(this, name, dtype, t.ElementCount, DataStart + t.Offset), t.Shape);
    }

    /// <summary>The tensor's stored bytes (valid while this file is open; tensors of 2 GB and more need <see cref="GgufTensor"/>).</summary>
    public ReadOnlySpan<byte> GetBytes(string name) => Bytes(GetInfo(name), 0, GetInfo(name).ByteLength);

    /// <summary>Bytes [begin, begin + count) of a tensor's data.</summary>
    internal ReadOnlySpan<byte> Bytes(GgufTensorInfo t, long begin, long count)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (begin < 0 || count < 0 || begin + count > t.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(begin), $"bytes [{begin}, {begin + count}) outside the {t.ByteLength} bytes of '{t.Name}'");
        if (count > int.MaxValue) throw new NotSupportedException($"a span of {count} bytes of '{t.Name}' is over 2 GB: read it in ranges");
        return _file.Bytes(this, DataStart + t.Offset + begin, (int)count);
    }

    public void Dispose() => _file.Dispose();
}

/// <summary>
/// A GGUF tensor left in its ggml encoding. Elements are numbered in PyTorch row-major order of <see cref="Shape"/>
/// (the same flat order as ggml's), so rows of the [Shape[0], ElementCount / Shape[0]] view of a weight are what
/// a GEMM over out-features needs; a row may begin inside a block (a reshaped conv weight), which is handled.
/// </summary>
public sealed class GgufTensor
{
    private readonly GgufFile _file;

    internal GgufTensor(GgufFile file, GgufTensorInfo info)
    {
        _file = file;
        Info = info;
    }

    public GgufTensorInfo Info { get; }
    public string Name => Info.Name;
    public GgmlType Type => Info.Type;
    public int[] Shape => Info.Shape;
    public long ElementCount => Info.ElementCount;

    /// <summary>Rows of the [Shape[0], RowLength] view: the first dimension (1 for a scalar).</summary>
    public long Rows => Shape.Length == 0 ? 1 : Shape[0];

    /// <summary>Elements per row of the [Rows, RowLength] view: the product of all dimensions but the first.</summary>
    public long RowLength => Rows == 0 ? 0 : ElementCount / Rows;

    /// <summary>Elements [start, start + dst.Length) of the flat tensor, decoded to float32.</summary>
    public void Dequantize(long start, Span<float> dst)
    {
        if (start < 0 || start + dst.Length > ElementCount)
            throw new ArgumentOutOfRangeException(nameof(start), $"elements [{start}, {start + dst.Length}) outside the {ElementCount} of '{Name}'");
        if (dst.IsEmpty) return;
        int block = GgmlTypes.BlockSize(Type), bytes = GgmlTypes.BlockBytes(Type);
        long firstBlock = start / block, endBlock = (start + dst.Length + block - 1) / block;
        var data = _file.Bytes(Info, firstBlock * bytes, (endBlock - firstBlock) * bytes);
        GgmlDequantize.Range(Type, data, start - firstBlock * block, dst);
    }

    /// <summary>Rows [r0, r1) of the [Rows, RowLength] view, row-major into dst.</summary>
    public void DequantizeRows(long r0, long r1, Span<float> dst)
    {
        if (r0 < 0 || r1 < r0 || r1 > Rows) throw new ArgumentOutOfRangeException(nameof(r0), $"rows [{r0}, {r1}) outside the {Rows} rows of '{Name}'");
        long count = (r1 - r0) * RowLength;
        if (dst.Length < count) throw new ArgumentException($"rows [{r0}, {r1}) of '{Name}' need {count} floats, dst holds {dst.Length}", nameof(dst));
        Dequantize(r0 * RowLength, dst[..(int)count]);
    }

    /// <summary>The whole tensor as float32, row-major in <see cref="Shape"/>.</summary>
    public float[] ToFloatArray()
    {
        var result = new float[ElementCount];
        Dequantize(0, result);
        return result;
    }

    /// <summary>The encoded bytes of elements [start, start + count), which must begin and end on block boundaries.</summary>
    public ReadOnlySpan<byte> BlockBytes(long start, long count)
    {
        int block = GgmlTypes.BlockSize(Type);
        if (start % block != 0 || count % block != 0)
            throw new ArgumentException($"elements [{start}, {start + count}) of '{Name}' do not begin and end on {GgmlTypes.Name(Type)} blocks of {block}");
        return _file.Bytes(Info, start / block * GgmlTypes.BlockBytes(Type), count / block * GgmlTypes.BlockBytes(Type));
    }
}
