using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

[assembly: InternalsVisibleTo("Sora.Tests")]

namespace Sora.Runtime.Gguf;

/// <summary>
/// Expands ggml-encoded tensor data to float32 with ggml's exact semantics (ggml-quants.c dequantize_row_*), in
/// ggml's operation order — each product and difference rounded separately, never fused — so the results equal
/// ggml's to_float bit for bit. Works on any element range, so a GEMM can expand the rows of one tile at a time
/// without materialising the tensor. Q8_0, Q4_K and Q6_K (the common weight formats) also have a Vector128 path,
/// lane for lane the same products and differences, so it gives the same bits as the scalar code.
/// </summary>
public static class GgmlDequantize
{
    /// <summary>Set by tests on their own thread to check the scalar code on hardware that has the vector path.</summary>
    [ThreadStatic] internal static bool ScalarOnly;

    private static bool Vectors => Vector128.IsHardwareAccelerated && !ScalarOnly;

    /// <summary>
    /// Writes elements [<paramref name="start"/>, start + dst.Length) of the flat tensor whose encoded data begins
    /// at <paramref name="data"/> (a tensor's whole byte range, or any slice of it that starts at a block boundary,
    /// with <paramref name="start"/> counted from that boundary). The range may begin and end inside blocks.
    /// </summary>
    public static void Range(GgmlType type, ReadOnlySpan<byte> data, long start, Span<float> dst)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        if (dst.IsEmpty) return;
        int block = GgmlTypes.BlockSize(type), bytes = GgmlTypes.BlockBytes(type);
        long firstBlock = start / block, endBlock = (start + dst.Length + block - 1) / block;
        if (endBlock * bytes > data.Length)
            throw new ArgumentException($"elements [{start}, {start + dst.Length}) of {GgmlTypes.Name(type)} need {endBlock * bytes} bytes, the data holds {data.Length}", nameof(data));
        var blocks = data[checked((int)(firstBlock * bytes))..checked((int)(endBlock * bytes))];
        int skip = (int)(start - firstBlock * block);
        int head = skip == 0 ? 0 : Math.Min(dst.Length, block - skip);
        Span<float> scratch = stackalloc float[GgmlTypes.QK_K];
        if (head > 0)
        {
            Blocks(type, blocks[..bytes], scratch[..block]);
            scratch.Slice(skip, head).CopyTo(dst);
            blocks = blocks[bytes..];
            dst = dst[head..];
        }
        int whole = dst.Length / block;
        Blocks(type, blocks[..(whole * bytes)], dst[..(whole * block)]);
        int tail = dst.Length - whole * block;
        if (tail > 0)
        {
            Blocks(type, blocks.Slice(whole * bytes, bytes), scratch[..block]);
            scratch[..tail].CopyTo(dst[(whole * block)..]);
        }
    }

    /// <summary>Rows [<paramref name="r0"/>, <paramref name="r1"/>) of the tensor seen as [N, <paramref name="rowLength"/>], into dst (row-major).</summary>
    public static void Rows(GgmlType type, ReadOnlySpan<byte> data, int rowLength, int r0, int r1, Span<float> dst)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(r0);
        ArgumentOutOfRangeException.ThrowIfLessThan(r1, r0);
        long count = (long)(r1 - r0) * rowLength;
        if (dst.Length < count) throw new ArgumentException($"rows [{r0}, {r1}) of length {rowLength} need {count} floats, dst holds {dst.Length}", nameof(dst));
        Range(type, data, (long)r0 * rowLength, dst[..(int)count]);
    }

    /// <summary>Whole blocks: <paramref name="src"/> holds dst.Length / BlockSize blocks.</summary>
    public static void Blocks(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int block = GgmlTypes.BlockSize(type), bytes = GgmlTypes.BlockBytes(type);
        if (dst.Length % block != 0 || (long)dst.Length / block * bytes != src.Length)
            throw new ArgumentException($"{src.Length} bytes of {GgmlTypes.Name(type)} do not decode to {dst.Length} floats");
        switch (type)
        {
            case GgmlType.F32:
                for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
                return;
            case GgmlType.F16:
                for (int i = 0; i < dst.Length; i++) dst[i] = Half(src, 2 * i);
                return;
            case GgmlType.BF16:
                for (int i = 0; i < dst.Length; i++) dst[i] = BFloat16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]));
                return;
        }
        for (int b = 0, n = dst.Length / block; b < n; b++)
        {
            var x = src.Slice(b * bytes, bytes);
            var y = dst.Slice(b * block, block);
            switch (type)
            {
                case GgmlType.Q4_0: Q4_0(x, y); break;
                case GgmlType.Q4_1: Q4_1(x, y); break;
                case GgmlType.Q5_0: Q5_0(x, y); break;
                case GgmlType.Q5_1: Q5_1(x, y); break;
                case GgmlType.Q8_0: Q8_0(x, y); break;
                case GgmlType.Q2_K: Q2_K(x, y); break;
                case GgmlType.Q3_K: Q3_K(x, y); break;
                case GgmlType.Q4_K: Q4_K(x, y); break;
                case GgmlType.Q5_K: Q5_K(x, y); break;
                case GgmlType.Q6_K: Q6_K(x, y); break;
                default: throw new NotSupportedException($"ggml type {GgmlTypes.Name(type)} has no dequantiser");
            }
        }
    }

    private static float Half(ReadOnlySpan<byte> x, int at) => (float)BinaryPrimitives.ReadHalfLittleEndian(x[at..]);

    /// <summary>y[j] = (q[j] - 8)·d, low nibbles first, then high nibbles.</summary>
    private static void Q4_0(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0);
        var qs = x.Slice(2, 16);
        for (int j = 0; j < 16; j++)
        {
            y[j] = ((qs[j] & 0xF) - 8) * d;
            y[j + 16] = ((qs[j] >> 4) - 8) * d;
        }
    }

    /// <summary>y[j] = q[j]·d + m.</summary>
    private static void Q4_1(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0), m = Half(x, 2);
        var qs = x.Slice(4, 16);
        for (int j = 0; j < 16; j++)
        {
            y[j] = (qs[j] & 0xF) * d + m;
            y[j + 16] = (qs[j] >> 4) * d + m;
        }
    }

    /// <summary>y[j] = (q[j] - 16)·d with the fifth bit of element j in bit j of qh.</summary>
    private static void Q5_0(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0);
        uint qh = BinaryPrimitives.ReadUInt32LittleEndian(x[2..]);
        var qs = x.Slice(6, 16);
        for (int j = 0; j < 16; j++)
        {
            int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
            y[j] = (((qs[j] & 0xF) | h0) - 16) * d;
            y[j + 16] = (((qs[j] >> 4) | h1) - 16) * d;
        }
    }

    /// <summary>y[j] = q[j]·d + m, five-bit q as in Q5_0.</summary>
    private static void Q5_1(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0), m = Half(x, 2);
        uint qh = BinaryPrimitives.ReadUInt32LittleEndian(x[4..]);
        var qs = x.Slice(8, 16);
        for (int j = 0; j < 16; j++)
        {
            int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
            y[j] = ((qs[j] & 0xF) | h0) * d + m;
            y[j + 16] = ((qs[j] >> 4) | h1) * d + m;
        }
    }

    /// <summary>y[j] = q[j]·d, q signed bytes.</summary>
    private static void Q8_0(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0);
        if (Vectors)
        {
            Affine(Vector128.Create(x.Slice(2, 16)).AsSByte(), d, y);
            Affine(Vector128.Create(x.Slice(18, 16)).AsSByte(), d, y[16..]);
            return;
        }
        for (int j = 0; j < 32; j++) y[j] = (sbyte)x[2 + j] * d;
    }

    /// <summary>y[0..16) = q[i]·a for 16 signed bytes.</summary>
    private static void Affine(Vector128<sbyte> q, float a, Span<float> y)
    {
        var av = Vector128.Create(a);
        var (lo, hi) = Vector128.Widen(q);
        var (w0, w1) = Vector128.Widen(lo);
        var (w2, w3) = Vector128.Widen(hi);
        (Vector128.ConvertToSingle(w0) * av).CopyTo(y);
        (Vector128.ConvertToSingle(w1) * av).CopyTo(y[4..]);
        (Vector128.ConvertToSingle(w2) * av).CopyTo(y[8..]);
        (Vector128.ConvertToSingle(w3) * av).CopyTo(y[12..]);
    }

    /// <summary>y[0..16) = a·q[i] - b for 16 unsigned bytes.</summary>
    private static void Affine(Vector128<byte> q, float a, float b, Span<float> y)
    {
        Vector128<float> av = Vector128.Create(a), bv = Vector128.Create(b);
        var (lo, hi) = Vector128.Widen(q);
        var (w0, w1) = Vector128.Widen(lo);
        var (w2, w3) = Vector128.Widen(hi);
        (av * Vector128.ConvertToSingle(w0.AsInt32()) - bv).CopyTo(y);
        (av * Vector128.ConvertToSingle(w1.AsInt32()) - bv).CopyTo(y[4..]);
        (av * Vector128.ConvertToSingle(w2.AsInt32()) - bv).CopyTo(y[8..]);
        (av * Vector128.ConvertToSingle(w3.AsInt32()) - bv).CopyTo(y[12..]);
    }

    /// <summary>
    /// 16 groups of 16: y = (d·sc)·q - (dmin·m) with 4-bit sc (low nibble) and m (high nibble) per group, q two bits;
    /// bytes hold four q of elements 32 apart.
    /// </summary>
    private static void Q2_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var scales = x[..16];
        float d = Half(x, 80), min = Half(x, 82);
        int o = 0, s = 0;
        for (int n = 0; n < 2; n++)
        {
            var q = x.Slice(16 + 32 * n, 32);
            for (int shift = 0; shift < 8; shift += 2)
                for (int half = 0; half < 32; half += 16)
                {
                    byte sc = scales[s++];
                    float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) y[o++] = dl * ((q[half + l] >> shift) & 3) - ml;
                }
        }
    }

    /// <summary>
    /// 16 groups of 16: y = (d·(sc - 32))·(q - 4·!hbit) with six-bit sc (low four bits from scales[0..8], high two from
    /// scales[8..12]), two-bit q as in Q2_K and the third bit in hmask (bit i of hmask[l] for the i-th quarter).
    /// </summary>
    private static void Q3_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        var hmask = x[..32];
        var packed = x.Slice(96, 12);
        float dAll = Half(x, 108);
        Span<int> scales = stackalloc int[16];
        for (int j = 0; j < 16; j++)
        {
            int low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
            int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
            scales[j] = (low | (high << 4)) - 32;
        }
        int o = 0, s = 0, m = 1;
        for (int n = 0; n < 2; n++)
        {
            var q = x.Slice(32 + 32 * n, 32);
            for (int shift = 0; shift < 8; shift += 2, m <<= 1)
                for (int half = 0; half < 32; half += 16)
                {
                    float dl = dAll * scales[s++];
                    for (int l = 0; l < 16; l++)
                        y[o++] = dl * (((q[half + l] >> shift) & 3) - ((hmask[half + l] & m) != 0 ? 0 : 4));
                }
        }
    }

    /// <summary>The six-bit scale and min of group j of a Q4_K/Q5_K block (ggml's get_scale_min_k4).</summary>
    private static (int Scale, int Min) ScaleMinK4(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    /// <summary>8 groups of 32: y = (d·sc)·q - (dmin·m); a byte holds q of elements 32 apart (low nibble first).</summary>
    private static void Q4_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0), min = Half(x, 2);
        var scales = x.Slice(4, 12);
        int o = 0;
        for (int g = 0; g < 8; g += 2)
        {
            var q = x.Slice(16 + 16 * g, 32);
            var (sc1, m1) = ScaleMinK4(g, scales);
            var (sc2, m2) = ScaleMinK4(g + 1, scales);
            float d1 = d * sc1, dm1 = min * m1, d2 = d * sc2, dm2 = min * m2;
            if (Vectors)
            {
                Vector128<byte> q0 = Vector128.Create(q[..16]), q1 = Vector128.Create(q[16..]), low = Vector128.Create((byte)0xF);
                Affine(q0 & low, d1, dm1, y[o..]);
                Affine(q1 & low, d1, dm1, y[(o + 16)..]);
                Affine(Vector128.ShiftRightLogical(q0, 4), d2, dm2, y[(o + 32)..]);
                Affine(Vector128.ShiftRightLogical(q1, 4), d2, dm2, y[(o + 48)..]);
                o += 64;
                continue;
            }
            for (int l = 0; l < 32; l++) y[o++] = d1 * (q[l] & 0xF) - dm1;
            for (int l = 0; l < 32; l++) y[o++] = d2 * (q[l] >> 4) - dm2;
        }
    }

    /// <summary>Q4_K with a fifth bit per element in qh (bit g of qh[l] for group g).</summary>
    private static void Q5_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 0), min = Half(x, 2);
        var scales = x.Slice(4, 12);
        var qh = x.Slice(16, 32);
        int o = 0;
        for (int g = 0; g < 8; g += 2)
        {
            var ql = x.Slice(48 + 16 * g, 32);
            var (sc1, m1) = ScaleMinK4(g, scales);
            var (sc2, m2) = ScaleMinK4(g + 1, scales);
            float d1 = d * sc1, dm1 = min * m1, d2 = d * sc2, dm2 = min * m2;
            int u1 = 1 << g, u2 = 2 << g;
            for (int l = 0; l < 32; l++) y[o++] = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - dm1;
            for (int l = 0; l < 32; l++) y[o++] = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - dm2;
        }
    }

    /// <summary>
    /// 16 groups of 16: y = (d·sc)·(q - 32) with signed eight-bit sc and six-bit q: four low bits in ql, two high
    /// bits in qh; each half of 128 elements takes 64 ql and 32 qh bytes.
    /// </summary>
    private static void Q6_K(ReadOnlySpan<byte> x, Span<float> y)
    {
        float d = Half(x, 208);
        for (int n = 0; n < 2; n++)
        {
            var ql = x.Slice(64 * n, 64);
            var qh = x.Slice(128 + 32 * n, 32);
            var sc = x.Slice(192 + 8 * n, 8);
            var yn = y.Slice(128 * n, 128);
            if (Vectors)
            {
                for (int c = 0; c < 2; c++) // elements l in [16c, 16c + 16) share the scales sc[c], sc[c + 2], sc[c + 4], sc[c + 6]
                {
                    Vector128<byte> lo = Vector128.Create(ql.Slice(16 * c, 16)), hi = Vector128.Create(ql.Slice(32 + 16 * c, 16));
                    Vector128<byte> h = Vector128.Create(qh.Slice(16 * c, 16)), four = Vector128.Create((byte)0xF), two = Vector128.Create((byte)3), bias = Vector128.Create((byte)32);
                    var q1 = ((lo & four) | Vector128.ShiftLeft(h & two, 4)) - bias;
                    var q2 = ((hi & four) | Vector128.ShiftLeft(Vector128.ShiftRightLogical(h, 2) & two, 4)) - bias;
                    var q3 = (Vector128.ShiftRightLogical(lo, 4) | Vector128.ShiftLeft(Vector128.ShiftRightLogical(h, 4) & two, 4)) - bias;
                    var q4 = (Vector128.ShiftRightLogical(hi, 4) | Vector128.ShiftLeft(Vector128.ShiftRightLogical(h, 6), 4)) - bias;
                    Affine(q1.AsSByte(), d * (sbyte)sc[c], yn[(16 * c)..]);
                    Affine(q2.AsSByte(), d * (sbyte)sc[c + 2], yn[(32 + 16 * c)..]);
                    Affine(q3.AsSByte(), d * (sbyte)sc[c + 4], yn[(64 + 16 * c)..]);
                    Affine(q4.AsSByte(), d * (sbyte)sc[c + 6], yn[(96 + 16 * c)..]);
                }
                continue;
            }
            for (int l = 0; l < 32; l++)
            {
                int s = l / 16;
                int q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                yn[l] = d * (sbyte)sc[s] * q1;
                yn[l + 32] = d * (sbyte)sc[s + 2] * q2;
                yn[l + 64] = d * (sbyte)sc[s + 4] * q3;
                yn[l + 96] = d * (sbyte)sc[s + 6] * q4;
            }
        }
    }
}
