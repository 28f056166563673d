namespace Sora.Runtime;

/// <summary>
/// Element types a tensor can hold. Activations are F32; weights may stay F16, BF16 or one of the 8-bit floats
/// (F8E4M3, F8E5M2: storage and conversion to F32 only; no kernel computes on them).
/// </summary>
public enum DType
{
    F32,
    F16,
    BF16,
    /// <summary>float8 e4m3fn: bias 7, no infinities, S.1111.111 is NaN, largest finite 448.</summary>
    F8E4M3,
    /// <summary>float8 e5m2: IEEE-style with bias 15, infinities and NaNs, largest finite 57344.</summary>
    F8E5M2,
}

public static class DTypes
{
    public static int SizeOf(DType dtype) => dtype switch
    {
        DType.F32 => 4,
        DType.F16 => 2,
        DType.BF16 => 2,
        DType.F8E4M3 => 1,
        DType.F8E5M2 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    /// <summary>The safetensors spelling of the dtype ("F32", "F16", "BF16", "F8_E4M3", "F8_E5M2").</summary>
    public static string SafetensorsName(DType dtype) => dtype switch
    {
        DType.F32 => "F32",
        DType.F16 => "F16",
        DType.BF16 => "BF16",
        DType.F8E4M3 => "F8_E4M3",
        DType.F8E5M2 => "F8_E5M2",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    public static bool TryParseSafetensorsName(string name, out DType dtype)
    {
        switch (name)
        {
            case "F32": dtype = DType.F32; return true;
            case "F16": dtype = DType.F16; return true;
            case "BF16": dtype = DType.BF16; return true;
            case "F8_E4M3": dtype = DType.F8E4M3; return true;
            case "F8_E5M2": dtype = DType.F8E5M2; return true;
            default: dtype = default; return false;
        }
    }
}

/// <summary>bfloat16 stored as the upper 16 bits of an IEEE float32.</summary>
public static class BFloat16
{
    public static float ToFloat(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Round to nearest, ties to even; NaN stays a (quiet) NaN.</summary>
    public static ushort FromFloat(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u)
            return (ushort)((bits >> 16) | 0x0040u);
        uint roundingBias = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + roundingBias) >> 16);
    }
}

/// <summary>
/// The 8-bit floats, decoded exactly to float32 through a 256-entry table per format (every code is exactly
/// representable in float32). e4m3fn: value = (-1)^s · 2^(e-7) · (1 + m/8), subnormals (e = 0) 2^-6 · m/8, and
/// S.1111.111 NaN (no infinities). e5m2: the upper byte of an IEEE binary16.
/// </summary>
public static class Float8
{
    private static readonly float[] E4M3Table = BuildE4M3();
    private static readonly float[] E5M2Table = BuildE5M2();

    public static float E4M3ToFloat(byte code) => E4M3Table[code];

    public static float E5M2ToFloat(byte code) => E5M2Table[code];

    /// <summary>Decodes <paramref name="src"/> (codes of <paramref name="dtype"/>, an F8 type) into <paramref name="dst"/>.</summary>
    public static void ToFloat(DType dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"destination holds {dst.Length} floats, {src.Length} needed", nameof(dst));
        var table = dtype switch
        {
            DType.F8E4M3 => E4M3Table,
            DType.F8E5M2 => E5M2Table,
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not an 8-bit float dtype"),
        };
        for (int i = 0; i < src.Length; i++) dst[i] = table[src[i]];
    }

    private static float[] BuildE4M3()
    {
        var table = new float[256];
        for (int code = 0; code < 256; code++)
        {
            int e = (code >> 3) & 0xF, m = code & 7;
            float magnitude = e == 0xF && m == 7 ? float.NaN
                : e == 0 ? MathF.ScaleB(m, -9)
                : MathF.ScaleB(8 + m, e - 10);
            table[code] = (code & 0x80) != 0 ? -magnitude : magnitude;
        }
        return table;
    }

    private static float[] BuildE5M2()
    {
        var table = new float[256];
        for (int code = 0; code < 256; code++) table[code] = (float)BitConverter.UInt16BitsToHalf((ushort)(code << 8));
        return table;
    }
}
