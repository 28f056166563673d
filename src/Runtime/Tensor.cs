namespace Sora.Runtime;

/// <summary>
/// A strided view over a <see cref="Storage"/>: shape, strides (in elements), offset (in elements) and dtype.
/// A tensor made by allocation owns its storage and frees it on Dispose; views (Reshape, Slice, Permute)
/// share the storage and own nothing. Copies between host and device are explicit: see
/// <see cref="IBackend.ToDevice"/> and <see cref="IBackend.ToHost"/>.
/// </summary>
public sealed class Tensor : IDisposable
{
    private readonly bool _ownsStorage;

    public Tensor(Storage storage, int[] shape, long[]? strides = null, long offset = 0, bool ownsStorage = false)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(shape);
        foreach (int d in shape)
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(", ", shape)}]", nameof(shape));
        Storage = storage;
        Shape = (int[])shape.Clone();
        Strides = strides is null ? ContiguousStrides(shape) : (long[])strides.Clone();
        if (Strides.Length != Shape.Length)
            throw new ArgumentException($"strides rank {Strides.Length} differs from shape rank {Shape.Length}", nameof(strides));
        Offset = offset;
        _ownsStorage = ownsStorage;
        if (ElementCount > 0 && !InsideStorage())
            throw new ArgumentException($"view [{string.Join(", ", shape)}] with strides [{string.Join(", ", Strides)}] at offset {offset} exceeds its storage of {storage.Length} elements");
    }

    /// <summary>Whether the lowest and highest element addresses (negative strides included) lie in the storage.</summary>
    private bool InsideStorage()
    {
        try
        {
            long lowest = Offset, highest = Offset;
            for (int i = 0; i < Shape.Length; i++)
            {
                long extent = checked((Shape[i] - 1) * Strides[i]);
                if (extent > 0) highest = checked(highest + extent); else lowest = checked(lowest + extent);
            }
            return lowest >= 0 && highest < Storage.Length;
        }
        catch (OverflowException) { return false; }
    }

    public Storage Storage { get; }
    public int[] Shape { get; }
    public long[] Strides { get; }
    public long Offset { get; }
    public DType DType => Storage.DType;
    public int Rank => Shape.Length;
    public bool IsHost => Storage is HostStorage;
    public string Location => Storage.Location;

    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (int d in Shape) n *= d;
            return n;
        }
    }

    public int Dim(int axis) => Shape[axis < 0 ? axis + Rank : axis];

    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            for (int i = Rank - 1; i >= 0; i--)
            {
                if (Shape[i] != 1 && Strides[i] != expected) return false;
                expected *= Shape[i];
            }
            return true;
        }
    }

    public static long[] ContiguousStrides(int[] shape)
    {
        var strides = new long[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= shape[i];
        }
        return strides;
    }

    /// <summary>A view with a new shape; needs a contiguous tensor. One dimension may be -1.</summary>
    public Tensor Reshape(params int[] shape)
    {
        if (!IsContiguous) throw new InvalidOperationException($"Reshape needs a contiguous tensor, got shape {ShapeString} with strides [{string.Join(", ", Strides)}]");
        var resolved = (int[])shape.Clone();
        if (resolved.Count(d => d == -1) > 1 || resolved.Any(d => d < -1))
            throw new ArgumentException($"cannot reshape {ShapeString} to [{string.Join(", ", shape)}]: dimensions must be >= 0 with at most one -1", nameof(shape));
        int infer = Array.IndexOf(resolved, -1);
        long known = 1;
        for (int i = 0; i < resolved.Length; i++) if (i != infer) known *= resolved[i];
        if (infer >= 0)
        {
            if (known == 0 || ElementCount % known != 0) throw new ArgumentException($"cannot reshape {ShapeString} to [{string.Join(", ", shape)}]");
            resolved[infer] = (int)(ElementCount / known);
            known *= resolved[infer];
        }
        if (known != ElementCount) throw new ArgumentException($"cannot reshape {ShapeString} ({ElementCount} elements) to [{string.Join(", ", shape)}]");
        return new Tensor(Storage, resolved, null, Offset);
    }

    /// <summary>A view of <paramref name="length"/> entries of <paramref name="axis"/> from <paramref name="start"/>.</summary>
    public Tensor Slice(int axis, int start, int length)
    {
        if (axis < 0) axis += Rank;
        if (axis < 0 || axis >= Rank) throw new ArgumentOutOfRangeException(nameof(axis));
        if (start < 0 || length < 0 || start + length > Shape[axis])
            throw new ArgumentOutOfRangeException(nameof(start), $"slice [{start}, {start + length}) outside axis {axis} of size {Shape[axis]}");
        var shape = (int[])Shape.Clone();
        shape[axis] = length;
        return new Tensor(Storage, shape, Strides, Offset + start * Strides[axis]);
    }

    /// <summary>A view with axes reordered: new axis i is old axis <paramref name="order"/>[i].</summary>
    public Tensor Permute(params int[] order)
    {
        if (order.Length != Rank || order.Distinct().Count() != Rank || order.Any(a => a < 0 || a >= Rank))
            throw new ArgumentException($"invalid permutation [{string.Join(", ", order)}] for rank {Rank}", nameof(order));
        return new Tensor(Storage, order.Select(a => Shape[a]).ToArray(), order.Select(a => Strides[a]).ToArray(), Offset);
    }

    public string ShapeString => "[" + string.Join(", ", Shape) + "]";

    public override string ToString() => $"Tensor({DTypes.SafetensorsName(DType)} {ShapeString} on {Location})";

    public void Dispose()
    {
        if (_ownsStorage) Storage.Dispose();
    }

    // ---- host construction and access -------------------------------------------------------------

    /// <summary>A new host tensor (owning) holding a copy of <paramref name="data"/> converted to <paramref name="dtype"/>.</summary>
    public static Tensor FromArray(ReadOnlySpan<float> data, int[] shape, DType dtype = DType.F32)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        if (n != data.Length) throw new ArgumentException($"{data.Length} values do not fill shape [{string.Join(", ", shape)}]");
        var storage = HostStorage.Allocate(dtype, n);
        var t = new Tensor(storage, shape, ownsStorage: true);
        HostData.WriteFloats(storage, 0, data);
        return t;
    }

    public static Tensor ZerosHost(DType dtype, params int[] shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        return new Tensor(HostStorage.Allocate(dtype, n), shape, ownsStorage: true);
    }

    /// <summary>The elements in row-major order as float32 (host tensors of any dtype and strides).</summary>
    public float[] ToFloatArray()
    {
        if (Storage is not HostStorage host)
            throw new InvalidOperationException($"{this} is not on the host: copy it with backend.ToHost first");
        var result = new float[ElementCount];
        if (IsContiguous)
        {
            HostData.ReadFloats(host, Offset, result);
            return result;
        }
        var index = new int[Rank];
        for (long i = 0; i < result.Length; i++)
        {
            long off = Offset;
            for (int a = 0; a < Rank; a++) off += index[a] * Strides[a];
            result[i] = HostData.ReadFloat(host, off);
            for (int a = Rank - 1; a >= 0; a--)
            {
                if (++index[a] < Shape[a]) break;
                index[a] = 0;
            }
        }
        return result;
    }
}

/// <summary>Reads and writes host storage elements as float32, converting F16/BF16 (and reading the F8 types).</summary>
public static class HostData
{
    public static float ReadFloat(HostStorage s, long index) => s.DType switch
    {
        DType.F32 => s.AsSpan<float>()[checked((int)index)],
        DType.F16 => (float)s.AsSpan<Half>()[checked((int)index)],
        DType.BF16 => BFloat16.ToFloat(s.AsSpan<ushort>()[checked((int)index)]),
        DType.F8E4M3 => Float8.E4M3ToFloat(s.AsSpan<byte>()[checked((int)index)]),
        DType.F8E5M2 => Float8.E5M2ToFloat(s.AsSpan<byte>()[checked((int)index)]),
        _ => throw new NotSupportedException($"reading {s.DType} elements is not supported"),
    };

    public static void ReadFloats(HostStorage s, long offset, Span<float> dest)
    {
        int o = checked((int)offset);
        switch (s.DType)
        {
            case DType.F32: s.AsSpan<float>().Slice(o, dest.Length).CopyTo(dest); break;
            case DType.F16:
                {
                    var src = s.AsSpan<Half>().Slice(o, dest.Length);
                    for (int i = 0; i < dest.Length; i++) dest[i] = (float)src[i];
                    break;
                }
            case DType.BF16:
                {
                    var src = s.AsSpan<ushort>().Slice(o, dest.Length);
                    for (int i = 0; i < dest.Length; i++) dest[i] = BFloat16.ToFloat(src[i]);
                    break;
                }
            case DType.F8E4M3:
            case DType.F8E5M2:
                Float8.ToFloat(s.DType, s.AsSpan<byte>().Slice(o, dest.Length), dest);
                break;
            default: throw new NotSupportedException($"reading {s.DType} elements is not supported");
        }
    }

    public static void WriteFloats(HostStorage s, long offset, ReadOnlySpan<float> src)
    {
        int o = checked((int)offset);
        switch (s.DType)
        {
            case DType.F32: src.CopyTo(s.AsSpan<float>().Slice(o, src.Length)); break;
            case DType.F16:
                {
                    var dst = s.AsSpan<Half>().Slice(o, src.Length);
                    for (int i = 0; i < src.Length; i++) dst[i] = (Half)src[i];
                    break;
                }
            case DType.BF16:
                {
                    var dst = s.AsSpan<ushort>().Slice(o, src.Length);
                    for (int i = 0; i < src.Length; i++) dst[i] = BFloat16.FromFloat(src[i]);
                    break;
                }
            default: throw new NotSupportedException($"writing {s.DType} elements from float32 is not supported");
        }
    }
}
