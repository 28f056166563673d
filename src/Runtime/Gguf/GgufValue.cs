namespace Sora.Runtime.Gguf;

/// <summary>GGUF metadata value types (gguf.h enum gguf_type).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>
/// One metadata value: a scalar (byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long, double by
/// <see cref="Type"/>), or for <see cref="GgufValueType.Array"/> a typed array (byte[], int[], string[], ...) of
/// <see cref="ElementType"/>.
/// </summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.Array)
{
    public bool IsArray => Type == GgufValueType.Array;

    public string AsString() => Value as string ?? throw new InvalidCastException($"metadata value is {Describe()}, not a string");

    /// <summary>An integer scalar of any width, as long (a UInt64 above long.MaxValue does not convert).</summary>
    public long AsInt64() => Value switch
    {
        byte v => v,
        sbyte v => v,
        ushort v => v,
        short v => v,
        uint v => v,
        int v => v,
        long v => v,
        ulong v when v <= long.MaxValue => (long)v,
        _ => throw new InvalidCastException($"metadata value is {Describe()}, not an integer in the range of long"),
    };

    /// <summary>The elements of an integer array of any width, as long.</summary>
    public long[] AsInt64Array() => (IsArray ? ElementType : GgufValueType.Array) switch // by ElementType: the CLR lets an int[] pass as a uint[]
    {
        GgufValueType.UInt8 => Array.ConvertAll((byte[])Value, v => (long)v),
        GgufValueType.Int8 => Array.ConvertAll((sbyte[])Value, v => (long)v),
        GgufValueType.UInt16 => Array.ConvertAll((ushort[])Value, v => (long)v),
        GgufValueType.Int16 => Array.ConvertAll((short[])Value, v => (long)v),
        GgufValueType.UInt32 => Array.ConvertAll((uint[])Value, v => (long)v),
        GgufValueType.Int32 => Array.ConvertAll((int[])Value, v => (long)v),
        GgufValueType.Int64 => (long[])((long[])Value).Clone(),
        GgufValueType.UInt64 when ((ulong[])Value).All(v => v <= long.MaxValue) => Array.ConvertAll((ulong[])Value, v => (long)v),
        _ => throw new InvalidCastException($"metadata value is {Describe()}, not an integer array"),
    };

    public string Describe() => IsArray ? $"an array of {ElementType}" : Type.ToString();

    public override string ToString() => Value switch
    {
        string s => '"' + (s.Length <= 80 ? s : s[..80] + "...") + '"',
        Array a => $"{ElementType}[{a.Length}]",
        _ => Convert.ToString(Value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };
}
