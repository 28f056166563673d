using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Numerics.Tensors;
using Sora.Runtime;
using Tensor = Sora.Runtime.Tensor;

namespace Sora.Kernels.Cpu;

/// <summary>Argument checks and raw access to host tensors; every message names the offending argument.</summary>
internal static unsafe class HostArgs
{
    public static HostStorage Host(Tensor t, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.Storage is not HostStorage host)
            throw new ArgumentException($"{name} {t} is not a host tensor: the CPU backend computes on host memory only", name);
        if (host.IsDisposed) throw new ObjectDisposedException(name, $"{name} {t} uses a disposed storage");
        return host;
    }

    /// <summary>Pointer to element 0 of an F32 tensor.</summary>
    public static float* F32(Tensor t, string name)
    {
        var host = Host(t, name);
        if (t.DType != DType.F32) throw new ArgumentException($"{name} must be F32, got {t}", name);
        return (float*)host.Pointer + t.Offset;
    }

    /// <summary>Pointer to element 0 of a contiguous F32 tensor.</summary>
    public static float* F32Dense(Tensor t, string name)
    {
        float* p = F32(t, name);
        RequireContiguous(t, name);
        return p;
    }

    public static void RequireContiguous(Tensor t, string name)
    {
        if (!t.IsContiguous)
            throw new ArgumentException($"{name} {t} must be contiguous (strides [{string.Join(", ", t.Strides)}])", name);
    }

    public static void RequireRank(Tensor t, string name, int rank)
    {
        if (t.Rank != rank) throw new ArgumentException($"{name} must have rank {rank}, got shape {t.ShapeString}", name);
    }

    public static void RequireShape(Tensor t, string name, params int[] shape)
    {
        if (!t.Shape.AsSpan().SequenceEqual(shape))
            throw new ArgumentException($"{name} must have shape [{string.Join(", ", shape)}], got {t.ShapeString}", name);
    }

    public static void RequireSameCount(Tensor t, string name, long count, string what)
    {
        if (t.ElementCount != count)
            throw new ArgumentException($"{name} {t.ShapeString} has {t.ElementCount} elements, expected {count} ({what})", name);
    }

    /// <summary>Throws when the two tensors' element ranges share memory (ops that read one while writing the other).</summary>
    public static void RequireDisjoint(Tensor output, string outputName, Tensor input, string inputName)
    {
        if (output.Storage != input.Storage || output.ElementCount == 0 || input.ElementCount == 0) return;
        var (o0, o1) = Range(output);
        var (i0, i1) = Range(input);
        if (o0 <= i1 && i0 <= o1)
            throw new ArgumentException($"{outputName} {output} overlaps {inputName} {input} in memory; this op cannot run in place", outputName);
    }

    private static (long First, long Last) Range(Tensor t)
    {
        long last = t.Offset;
        for (int i = 0; i < t.Rank; i++) last += (t.Shape[i] - 1) * t.Strides[i];
        return (t.Offset, last);
    }

    /// <summary>
    /// A rank-2 F32 matrix whose rows may be strided (a view into a wider tensor) but whose columns are dense.
    /// Returns the pointer and the row stride.
    /// </summary>
    public static float* Matrix(Tensor t, string name, int rows, int cols, out long rowStride)
    {
        float* p = F32(t, name);
        RequireShape(t, name, rows, cols);
        if (cols > 1 && t.Strides[1] != 1)
            throw new ArgumentException($"{name} {t} must have dense rows (column stride 1), got strides [{string.Join(", ", t.Strides)}]", name);
        rowStride = rows > 1 ? t.Strides[0] : cols;
        if (rows > 1 && rowStride < cols)
            throw new ArgumentException($"{name} {t} has row stride {rowStride} smaller than its width {cols}", name);
        return p;
    }

    /// <summary>A small vector (bias, gate, norm weight) of any dtype and strides as float32, checked for its length.</summary>
    public static float[] Vector(Tensor t, string name, int length)
    {
        Host(t, name);
        if (t.ElementCount != length)
            throw new ArgumentException($"{name} must have {length} elements, got shape {t.ShapeString}", name);
        return t.ToFloatArray();
    }

    /// <summary>Converts count elements of a host storage from offset to float32.</summary>
    public static void ToFloat(HostStorage s, long offset, int count, float* dst)
    {
        switch (s.DType)
        {
            case DType.F32:
                Buffer.MemoryCopy((float*)s.Pointer + offset, dst, (long)count * 4, (long)count * 4);
                break;
            case DType.F16:
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)s.Pointer + offset, count), new Span<float>(dst, count));
                break;
            case DType.BF16:
                Bf16ToFloat((ushort*)s.Pointer + offset, dst, count);
                break;
            default:
                throw new NotSupportedException($"the CPU kernels do not read {s.DType} elements");
        }
    }

    /// <summary>bfloat16 → float32 is a 16-bit left shift of the bits.</summary>
    public static void Bf16ToFloat(ushort* src, float* dst, int n)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            for (; i + 16 <= n; i += 16)
            {
                Vector512<uint> wide = Avx512F.ConvertToVector512UInt32(Vector256.Load(src + i));
                Vector512.ShiftLeft(wide, 16).AsSingle().Store(dst + i);
            }
        }
        else if (Avx2.IsSupported)
        {
            for (; i + 8 <= n; i += 8)
            {
                Vector256<int> wide = Avx2.ConvertToVector256Int32(Vector128.Load(src + i));
                Vector256.ShiftLeft(wide, 16).AsSingle().Store(dst + i);
            }
        }
        for (; i < n; i++) dst[i] = BitConverter.Int32BitsToSingle(src[i] << 16);
    }
}
