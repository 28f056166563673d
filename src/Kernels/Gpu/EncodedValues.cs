using ILGPU;

namespace Sora.Kernels.Gpu;

// Element i of an encoded weight, decoded inside the kernel that loads it (the GEMM's W tile): fp8 codes and the ggml
// block formats. The ggml decoders repeat ggml-quants.c's dequantize_row_* for one element, in its operation order
// (each product and difference rounded on its own), so they give ggml's values; a device compiler that contracts
// a multiply and an add into an FMA can differ from them by an ulp. Elements are numbered in the flat row-major
// order ggml uses; block b of a format starts at byte b·BlockBytes.

/// <summary>float8 e4m3fn codes times a scale: (-1)^s·2^(e-7)·(1 + m/8), subnormals 2^-6·m/8, S.1111.111 NaN.</summary>
public readonly struct E4M3Values(ArrayView<byte> data, float scale) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;
    public readonly float Scale = scale;

    public float Read(long index)
    {
        uint code = Data[index];
        uint e = (code >> 3) & 0xF, m = code & 7;
        uint sign = (code & 0x80) << 24;
        float v;
        if (e == 0xF && m == 7) v = float.NaN;
        else if (e == 0)
        {
            float magnitude = m * 0.001953125f; // m·2^-9, exact
            v = sign != 0 ? -magnitude : magnitude;
        }
        else v = Interop.IntAsFloat(sign | ((e + 120) << 23) | (m << 20));
        return v * Scale;
    }
}

/// <summary>float8 e5m2 codes (the upper byte of an IEEE binary16) times a scale.</summary>
public readonly struct E5M2Values(ArrayView<byte> data, float scale) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;
    public readonly float Scale = scale;

    public float Read(long index) => HalfBits.ToFloat((ushort)(Data[index] << 8)) * Scale;
}

/// <summary>Little-endian reads from a byte view.</summary>
public static class Bytes
{
    public static float Half(ArrayView<byte> data, long at) => HalfBits.ToFloat((ushort)(data[at] | (data[at + 1] << 8)));

    public static uint U32(ArrayView<byte> data, long at) =>
        data[at] | ((uint)data[at + 1] << 8) | ((uint)data[at + 2] << 16) | ((uint)data[at + 3] << 24);
}

/// <summary>ggml f16 as bytes.</summary>
public readonly struct GgmlF16Values(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;
    public float Read(long index) => Bytes.Half(Data, 2 * index);
}

/// <summary>ggml bf16 as bytes.</summary>
public readonly struct GgmlBf16Values(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;
    public float Read(long index) => Interop.IntAsFloat(((uint)Data[2 * index] | ((uint)Data[2 * index + 1] << 8)) << 16);
}

/// <summary>ggml f32 as bytes.</summary>
public readonly struct GgmlF32Values(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;
    public float Read(long index) => Interop.IntAsFloat(Bytes.U32(Data, 4 * index));
}

/// <summary>Q4_0 (18 bytes per 32): (q - 8)·d, low nibbles are elements 0..15, high nibbles 16..31.</summary>
public readonly struct Q4_0Values(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;

    public float Read(long index)
    {
        long b = index / 32 * 18;
        int j = (int)(index % 32);
        float d = Bytes.Half(Data, b);
        int q = j < 16 ? Data[b + 2 + j] & 0xF : Data[b + 2 + j - 16] >> 4;
        return (q - 8) * d;
    }
}

/// <summary>Q4_1 (20 bytes per 32): q·d + m.</summary>
public readonly struct Q4_1Values(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;

    public float Read(long index)
    {
        long b = index / 32 * 20;
        int j = (int)(index % 32);
        float d = Bytes.Half(Data, b), m = Bytes.Half(Data, b + 2);
        int q = j < 16 ? Data[b + 4 + j] & 0xF : Data[b + 4 + j - 16] >> 4;
        return q * d + m;
    }
}

/// <summary>The five-bit q of element j of a Q5_0/Q5_1 block: a nibble of qs and bit j of qh.</summary>
public static class Q5Bits
{
    public static int Q(ArrayView<byte> data, long qhAt, long qsAt, int j)
    {
        uint qh = Bytes.U32(data, qhAt);
        return j < 16
            ? (data[qsAt + j] & 0xF) | ((int)((qh >> j) << 4) & 0x10)
            : (data[qsAt + j - 16] >> 4) | ((int)(qh >> (j - 16 + 12)) & 0x10);
    }
}

/// <summary>Q5_0 (22 bytes per 32): (q - 16)·d.</summary>
public readonly struct Q5_0Values(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;

    public float Read(long index)
    {
        long b = index / 32 * 22;
        float d = Bytes.Half(Data, b);
        return (Q5Bits.Q(Data, b + 2, b + 6, (int)(index % 32)) - 16) * d;
    }
}

/// <summary>Q5_1 (24 bytes per 32): q·d + m.</summary>
public readonly struct Q5_1Values(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;

    public float Read(long index)
    {
        long b = index / 32 * 24;
        float d = Bytes.Half(Data, b), m = Bytes.Half(Data, b + 2);
        return Q5Bits.Q(Data, b + 4, b + 8, (int)(index % 32)) * d + m;
    }
}

/// <summary>Q8_0 (34 bytes per 32): q·d with signed byte q.</summary>
public readonly struct Q8_0Values(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;

    public float Read(long index)
    {
        long b = index / 32 * 34;
        return (sbyte)Data[b + 2 + index % 32] * Bytes.Half(Data, b);
    }
}

/// <summary>
/// Q2_K (84 bytes per 256): (d·sc)·q - (dmin·m) per group of 16; element j is half n = j/128, shift 2·((j%128)/32),
/// byte qs[32n + j%32], group 8n + 2·((j%128)/32) + (j%32)/16.
/// </summary>
public readonly struct Q2_KValues(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;

    public float Read(long index)
    {
        long b = index / 256 * 84;
        int j = (int)(index % 256), n = j / 128, quarter = j % 128 / 32, within = j % 32;
        int sc = Data[b + n * 8 + quarter * 2 + within / 16];
        float d = Bytes.Half(Data, b + 80), min = Bytes.Half(Data, b + 82);
        float dl = d * (sc & 0xF), ml = min * (sc >> 4);
        int q = (Data[b + 16 + 32 * n + within] >> (2 * quarter)) & 3;
        return dl * q - ml;
    }
}

/// <summary>
/// Q3_K (110 bytes per 256): (d·(sc - 32))·(q - 4·!hbit), indexed as Q2_K, six-bit sc (low four bits in
/// scales[0..8], high two in scales[8..12]), hbit bit (4n + quarter) of hmask[j%32].
/// </summary>
public readonly struct Q3_KValues(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;

    public float Read(long index)
    {
        long b = index / 256 * 110;
        int j = (int)(index % 256), n = j / 128, quarter = j % 128 / 32, within = j % 32;
        int s = n * 8 + quarter * 2 + within / 16;
        long packed = b + 96;
        int low = s < 8 ? Data[packed + s] & 0xF : Data[packed + s - 8] >> 4;
        int high = (Data[packed + 8 + s % 4] >> (2 * (s / 4))) & 3;
        float dl = Bytes.Half(Data, b + 108) * ((low | (high << 4)) - 32);
        int q = (Data[b + 32 + 32 * n + within] >> (2 * quarter)) & 3;
        int hbit = Data[b + within] & (1 << (4 * n + quarter));
        return dl * (q - (hbit != 0 ? 0 : 4));
    }
}

/// <summary>The six-bit scale and min of group g of a Q4_K/Q5_K block (ggml's get_scale_min_k4), its 12 scale bytes at q[at..].</summary>
public static class ScaleMinK4
{
    public static int Scale(ArrayView<byte> q, long at, int g) =>
        g < 4 ? q[at + g] & 63 : (q[at + g + 4] & 0xF) | ((q[at + g - 4] >> 6) << 4);

    public static int Min(ArrayView<byte> q, long at, int g) =>
        g < 4 ? q[at + g + 4] & 63 : (q[at + g + 4] >> 4) | ((q[at + g] >> 6) << 4);
}

/// <summary>Q4_K (144 bytes per 256): (d·sc)·q - (dmin·m) per group g = j/32; byte qs[32·(g/2) + j%32], low nibble for even g.</summary>
public readonly struct Q4_KValues(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;

    public float Read(long index)
    {
        long b = index / 256 * 144;
        int j = (int)(index % 256), g = j / 32;
        float d = Bytes.Half(Data, b), min = Bytes.Half(Data, b + 2);
        float dl = d * ScaleMinK4.Scale(Data, b + 4, g), ml = min * ScaleMinK4.Min(Data, b + 4, g);
        int packed = Data[b + 16 + 32 * (g / 2) + j % 32];
        int q = (g & 1) == 0 ? packed & 0xF : packed >> 4;
        return dl * q - ml;
    }
}

/// <summary>Q5_K (176 bytes per 256): Q4_K plus a fifth bit, bit g of qh[j%32].</summary>
public readonly struct Q5_KValues(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;

    public float Read(long index)
    {
        long b = index / 256 * 176;
        int j = (int)(index % 256), g = j / 32;
        float d = Bytes.Half(Data, b), min = Bytes.Half(Data, b + 2);
        float dl = d * ScaleMinK4.Scale(Data, b + 4, g), ml = min * ScaleMinK4.Min(Data, b + 4, g);
        int packed = Data[b + 48 + 32 * (g / 2) + j % 32];
        int q = ((g & 1) == 0 ? packed & 0xF : packed >> 4) + ((Data[b + 16 + j % 32] & (1 << g)) != 0 ? 16 : 0);
        return dl * q - ml;
    }
}

/// <summary>
/// Q6_K (210 bytes per 256): (d·sc)·(q - 32) per group of 16, signed sc; element j is half n = j/128, quarter
/// u = (j%128)/32, l = j%32: four bits from ql[64n + l + 32·(u&amp;1)] (high nibble for u ≥ 2), two from qh[32n + l] at 2u.
/// </summary>
public readonly struct Q6_KValues(ArrayView<byte> data) : IReadFloat
{
    public readonly ArrayView<byte> Data = data;

    public float Read(long index)
    {
        long b = index / 256 * 210;
        int j = (int)(index % 256), n = j / 128, u = j % 128 / 32, l = j % 32;
        int ql = Data[b + 64 * n + l + 32 * (u & 1)];
        int low = u < 2 ? ql & 0xF : ql >> 4;
        int high = (Data[b + 128 + 32 * n + l] >> (2 * u)) & 3;
        int q = (low | (high << 4)) - 32;
        float d = Bytes.Half(Data, b + 208);
        return d * (sbyte)Data[b + 192 + 8 * n + l / 16 + 2 * u] * q;
    }
}
