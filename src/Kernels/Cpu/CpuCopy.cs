using Sora.Runtime;

namespace Sora.Kernels.Cpu;

/// <summary>
/// Copy between any strides and dtypes. Dimensions that are contiguous in both tensors are merged first, so a
/// slice of whole frames or rows becomes a few long row copies (memcpy when the dtypes match).
/// </summary>
internal static unsafe class CpuCopy
{
    public static void Strided(CpuBackend backend, HostStorage s, Tensor src, HostStorage d, Tensor dst)
    {
        var (shape, ss, ds) = Coalesce(src.Shape, src.Strides, dst.Strides);
        int rank = shape.Count;
        long inner = shape[rank - 1];
        long rows = src.ElementCount / inner;
        long innerS = ss[rank - 1], innerD = ds[rank - 1];
        backend.ForRanges(rows, Math.Max(1, 65536 / inner), (r0, r1) =>
        {
            for (long r = r0; r < r1; r++)
            {
                // Offsets of row r: its index over the outer dimensions, last outer dimension fastest.
                long so = src.Offset, doff = dst.Offset, rest = r;
                for (int a = rank - 2; a >= 0; a--)
                {
                    long i = rest % shape[a];
                    rest /= shape[a];
                    so += i * ss[a];
                    doff += i * ds[a];
                }
                CopyRow(s, so, innerS, d, doff, innerD, inner);
            }
        });
    }

    /// <summary>Merges dimension a into a+1 wherever both tensors step through them as one.</summary>
    private static (List<long> Shape, List<long> Src, List<long> Dst) Coalesce(int[] shape, long[] src, long[] dst)
    {
        var sh = new List<long>();
        var ss = new List<long>();
        var ds = new List<long>();
        for (int a = 0; a < shape.Length; a++)
        {
            if (shape[a] == 1) continue;
            int last = sh.Count - 1;
            if (last >= 0 && ss[last] == shape[a] * src[a] && ds[last] == shape[a] * dst[a])
            {
                sh[last] *= shape[a];
                ss[last] = src[a];
                ds[last] = dst[a];
            }
            else
            {
                sh.Add(shape[a]);
                ss.Add(src[a]);
                ds.Add(dst[a]);
            }
        }
        if (sh.Count == 0)
        {
            sh.Add(1);
            ss.Add(1);
            ds.Add(1);
        }
        return (sh, ss, ds);
    }

    private static void CopyRow(HostStorage s, long so, long ss, HostStorage d, long doff, long ds, long n)
    {
        int size = DTypes.SizeOf(s.DType);
        if (ss == 1 && ds == 1 && s.DType == d.DType)
        {
            Buffer.MemoryCopy((byte*)s.Pointer + so * size, (byte*)d.Pointer + doff * size, n * size, n * size);
            return;
        }
        if (ss == 1 && ds == 1 && d.DType == DType.F32 && n <= int.MaxValue)
        {
            HostArgs.ToFloat(s, so, (int)n, (float*)d.Pointer + doff);
            return;
        }
        for (long i = 0; i < n; i++) Write(d, doff + i * ds, Read(s, so + i * ss));
    }

    private static float Read(HostStorage s, long i) => s.DType switch
    {
        DType.F32 => ((float*)s.Pointer)[i],
        DType.F16 => (float)((Half*)s.Pointer)[i],
        DType.BF16 => BitConverter.Int32BitsToSingle(((ushort*)s.Pointer)[i] << 16),
        _ => throw new NotSupportedException($"Copy does not convert {s.DType} elements"),
    };

    private static void Write(HostStorage s, long i, float v)
    {
        switch (s.DType)
        {
            case DType.F32: ((float*)s.Pointer)[i] = v; break;
            case DType.F16: ((Half*)s.Pointer)[i] = (Half)v; break;
            case DType.BF16: ((ushort*)s.Pointer)[i] = BFloat16.FromFloat(v); break;
            default: throw new NotSupportedException($"Copy does not convert to {s.DType} elements");
        }
    }
}
