using ILGPU;

namespace Sora.Kernels.Gpu;

/// <summary>Reads element i of a device buffer as float32, whatever its storage dtype (used inside kernels).</summary>
public interface IReadFloat
{
    float Read(long index);
}

/// <summary>Writes a float32 into element i of a device buffer, narrowing to its storage dtype.</summary>
public interface IWriteFloat
{
    void Write(long index, float value);
}

public readonly struct F32Values(ArrayView<float> data) : IReadFloat, IWriteFloat
{
    public readonly ArrayView<float> Data = data;
    public float Read(long index) => Data[index];
    public void Write(long index, float value) => Data[index] = value;
}

/// <summary>
/// IEEE half precision kept as its 16 raw bits and converted with integer operations: OpenCL devices without
/// cl_khr_fp16 (PoCL on CPUs) reject ILGPU's Half type in kernels.
/// </summary>
public readonly struct F16Values(ArrayView<ushort> data) : IReadFloat, IWriteFloat
{
    public readonly ArrayView<ushort> Data = data;
    public float Read(long index) => HalfBits.ToFloat(Data[index]);
    public void Write(long index, float value) => Data[index] = HalfBits.FromFloat(value);
}

/// <summary>binary16 ↔ binary32 by bit manipulation (exact widening; narrowing rounds to nearest, ties to even).</summary>
public static class HalfBits
{
    public static float ToFloat(ushort h)
    {
        uint sign = (uint)(h & 0x8000) << 16;
        uint exp = (uint)(h >> 10) & 0x1F;
        uint mant = (uint)h & 0x3FF;
        if (exp == 0x1F) return Interop.IntAsFloat(sign | 0x7F80_0000u | (mant << 13));
        if (exp != 0) return Interop.IntAsFloat(sign | ((exp + 112) << 23) | (mant << 13));
        // Zero or subnormal: mant·2⁻²⁴ is exact in float32.
        float magnitude = mant * 5.9604644775390625e-8f;
        return sign != 0 ? -magnitude : magnitude;
    }

    public static ushort FromFloat(float value)
    {
        uint f = Interop.FloatAsInt(value);
        uint sign = (f >> 16) & 0x8000;
        int exp = (int)((f >> 23) & 0xFF);
        uint mant = f & 0x7F_FFFF;
        if (exp == 0xFF) return (ushort)(sign | 0x7C00 | (mant != 0 ? 0x200 | (mant >> 13) : 0));
        int e = exp - 127 + 15;
        if (e >= 0x1F) return (ushort)(sign | 0x7C00);
        if (e <= 0)
        {
            if (e < -10) return (ushort)sign;
            mant |= 0x80_0000;
            int shift = 14 - e;
            uint sub = mant >> shift, rest = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
            if (rest > halfway || (rest == halfway && (sub & 1) != 0)) sub++;
            return (ushort)(sign | sub);
        }
        uint h = sign | ((uint)e << 10) | (mant >> 13);
        uint r = mant & 0x1FFF;
        // A carry out of the mantissa correctly bumps the exponent (up to infinity).
        if (r > 0x1000 || (r == 0x1000 && (h & 1) != 0)) h++;
        return (ushort)h;
    }
}

/// <summary>bfloat16 kept as its 16 raw bits: ILGPU has no bf16 type, and the widening is a shift.</summary>
public readonly struct Bf16Values(ArrayView<ushort> data) : IReadFloat, IWriteFloat
{
    public readonly ArrayView<ushort> Data = data;
    public float Read(long index) => Interop.IntAsFloat((uint)Data[index] << 16);

    /// <summary>Round to nearest, ties to even; NaN stays a quiet NaN (as <see cref="Sora.Runtime.BFloat16.FromFloat"/>).</summary>
    public void Write(long index, float value)
    {
        uint bits = Interop.FloatAsInt(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u)
        {
            Data[index] = (ushort)((bits >> 16) | 0x0040u);
            return;
        }
        uint bias = 0x7FFFu + ((bits >> 16) & 1u);
        Data[index] = (ushort)((bits + bias) >> 16);
    }
}

/// <summary>
/// Shape and element strides of a tensor view of rank ≤ 6 as plain fields (kernels cannot take arrays):
/// maps a row-major linear index to the element offset in its buffer.
/// </summary>
public readonly struct StridedLayout
{
    public readonly long Offset;
    public readonly int S0, S1, S2, S3, S4, S5;
    public readonly long T0, T1, T2, T3, T4, T5;

    public const int MaxRank = 6;

    public StridedLayout(int[] shape, long[] strides, long offset)
    {
        if (shape.Length > MaxRank) throw new ArgumentException($"rank {shape.Length} exceeds the {MaxRank} dimensions device copies support");
        // Right-align into six dims: missing leading dims have size 1.
        Span<int> s = stackalloc int[MaxRank];
        Span<long> t = stackalloc long[MaxRank];
        s.Fill(1);
        t.Clear();
        int pad = MaxRank - shape.Length;
        for (int i = 0; i < shape.Length; i++)
        {
            s[pad + i] = shape[i];
            t[pad + i] = strides[i];
        }
        Offset = offset;
        (S0, S1, S2, S3, S4, S5) = (s[0], s[1], s[2], s[3], s[4], s[5]);
        (T0, T1, T2, T3, T4, T5) = (t[0], t[1], t[2], t[3], t[4], t[5]);
    }

    public long At(long linear)
    {
        long off = Offset;
        long r = linear;
        off += (r % S5) * T5; r /= S5;
        off += (r % S4) * T4; r /= S4;
        off += (r % S3) * T3; r /= S3;
        off += (r % S2) * T2; r /= S2;
        off += (r % S1) * T1; r /= S1;
        off += r * T0;
        return off;
    }
}
