namespace Sora.Runtime.Gguf;

/// <summary>ggml's tensor type ids as stored in GGUF tensor infos (ggml.h enum ggml_type; gaps are removed types).</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    BF16 = 30,
}

/// <summary>Block geometry of the supported ggml types: a row of K elements is K / BlockSize blocks of BlockBytes each.</summary>
public static class GgmlTypes
{
    /// <summary>Elements per block of the 256-element "K-quant" super-blocks.</summary>
    public const int QK_K = 256;

    public static bool IsSupported(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1
            or GgmlType.Q8_0 or GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K => true,
        _ => false,
    };

    /// <summary>Elements per block (1 for the plain float types).</summary>
    public static int BlockSize(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 => 1,
        GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q8_0 => 32,
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K => QK_K,
        _ => throw Unsupported(type),
    };

    /// <summary>Bytes per block, from ggml-common.h's block structs (ggml_half is 2 bytes).</summary>
    public static int BlockBytes(GgmlType type) => type switch
    {
        GgmlType.F32 => 4,
        GgmlType.F16 or GgmlType.BF16 => 2,
        GgmlType.Q4_0 => 2 + 16,                // d, qs[16]
        GgmlType.Q4_1 => 2 + 2 + 16,            // d, m, qs[16]
        GgmlType.Q5_0 => 2 + 4 + 16,            // d, qh[4], qs[16]
        GgmlType.Q5_1 => 2 + 2 + 4 + 16,        // d, m, qh[4], qs[16]
        GgmlType.Q8_0 => 2 + 32,                // d, qs[32]
        GgmlType.Q2_K => 16 + 64 + 2 + 2,       // scales[16], qs[64], d, dmin
        GgmlType.Q3_K => 32 + 64 + 12 + 2,      // hmask[32], qs[64], scales[12], d
        GgmlType.Q4_K => 2 + 2 + 12 + 128,      // d, dmin, scales[12], qs[128]
        GgmlType.Q5_K => 2 + 2 + 12 + 32 + 128, // d, dmin, scales[12], qh[32], qs[128]
        GgmlType.Q6_K => 128 + 64 + 16 + 2,     // ql[128], qh[64], scales[16], d
        _ => throw Unsupported(type),
    };

    /// <summary>ggml's name of the type ("f32", "q4_K", ...).</summary>
    public static string Name(GgmlType type) => IsSupported(type) ? type switch
    {
        GgmlType.F32 => "f32",
        GgmlType.F16 => "f16",
        GgmlType.BF16 => "bf16",
        _ => type.ToString().ToLowerInvariant().Replace("_k", "_K"),
    } : $"type {(uint)type}";

    /// <summary>Bytes of <paramref name="elements"/> elements (a whole number of blocks), or -1 if they are not.</summary>
    public static long ByteCount(GgmlType type, long elements)
    {
        int block = BlockSize(type);
        if (elements < 0 || elements % block != 0) return -1;
        long blocks = elements / block;
        int bytes = BlockBytes(type);
        return blocks > long.MaxValue / bytes ? -1 : blocks * bytes;
    }

    private static NotSupportedException Unsupported(GgmlType type) => new($"ggml type id {(uint)type} is not supported");
}
