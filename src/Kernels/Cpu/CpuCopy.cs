using Sora.Runtime;

namespace Sora.Kernels.Cpu;

/// <summary>Copy between any strides and dtypes, one innermost row at a time.</summary>
internal static unsafe class CpuCopy
{
    public static void Strided(HostStorage s, Tensor src, HostStorage d, Tensor dst)
    {
        int rank = src.Rank;
        if (rank == 0)
        {
            Write(d, dst.Offset, Read(s, src.Offset));
            return;
        }
        int inner = src.Shape[rank - 1];
        long rows = src.ElementCount / inner;
        var index = new int[rank - 1];
        for (long r = 0; r < rows; r++)
        {
            long so = src.Offset, doff = dst.Offset;
            for (int a = 0; a < rank - 1; a++)
            {
                so += index[a] * src.Strides[a];
                doff += index[a] * dst.Strides[a];
            }
            long ss = src.Strides[rank - 1], ds = dst.Strides[rank - 1];
            for (int i = 0; i < inner; i++) Write(d, doff + i * ds, Read(s, so + i * ss));
            for (int a = rank - 2; a >= 0; a--)
            {
                if (++index[a] < src.Shape[a]) break;
                index[a] = 0;
            }
        }
    }

    private static float Read(HostStorage s, long i) => s.DType switch
    {
        DType.F32 => ((float*)s.Pointer)[i],
        DType.F16 => (float)((Half*)s.Pointer)[i],
        _ => BitConverter.Int32BitsToSingle(((ushort*)s.Pointer)[i] << 16),
    };

    private static void Write(HostStorage s, long i, float v)
    {
        switch (s.DType)
        {
            case DType.F32: ((float*)s.Pointer)[i] = v; break;
            case DType.F16: ((Half*)s.Pointer)[i] = (Half)v; break;
            default: ((ushort*)s.Pointer)[i] = BFloat16.FromFloat(v); break;
        }
    }
}
