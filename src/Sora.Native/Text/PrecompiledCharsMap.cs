using System.Buffers.Binary;

namespace Sora.Native.Text;

/// <summary>
/// SentencePiece's precompiled normalisation map: a Darts-clone double-array trie over UTF-8 byte strings
/// whose values are offsets into a blob of NUL-terminated replacement strings.
/// Blob layout: uint32 (little-endian) trie size in bytes, the trie's 32-bit units, then the strings.
/// </summary>
internal sealed class PrecompiledCharsMap
{
    private readonly uint[] _units;
    private readonly byte[] _normalized;

    private PrecompiledCharsMap(uint[] units, byte[] normalized)
    {
        _units = units;
        _normalized = normalized;
    }

    public static PrecompiledCharsMap Parse(ReadOnlySpan<byte> blob)
    {
        if (blob.Length <= 4) throw new InvalidDataException("precompiled_charsmap is too short to hold its trie size");
        uint trieBytes = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieBytes == 0 || trieBytes > (uint)(blob.Length - 4) || trieBytes % 4 != 0)
            throw new InvalidDataException($"precompiled_charsmap trie size {trieBytes} does not fit its {blob.Length}-byte blob");
        var units = new uint[trieBytes / 4];
        for (int i = 0; i < units.Length; i++) units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.Slice(4 + 4 * i));
        return new PrecompiledCharsMap(units, blob.Slice(4 + (int)trieBytes).ToArray());
    }

    /// <summary>
    /// Longest key of the map that is a prefix of <paramref name="input"/> (Darts-clone commonPrefixSearch,
    /// keeping the longest result as sentencepiece's NormalizePrefix does). Returns the matched byte length
    /// (0: no rule applies) and the replacement bytes.
    /// </summary>
    public int LongestPrefix(ReadOnlySpan<byte> input, out ReadOnlySpan<byte> replacement)
    {
        replacement = default;
        int longestLength = 0;
        int longestValue = 0;
        long nodePos = Offset(Unit(0));
        for (int i = 0; i < input.Length; i++)
        {
            byte c = input[i];
            nodePos ^= c;
            uint unit = Unit(nodePos);
            if (Label(unit) != c) break;
            nodePos ^= Offset(unit);
            if (HasLeaf(unit))
            {
                // Matches come in increasing length, so the last one is the longest.
                longestLength = i + 1;
                longestValue = (int)(Unit(nodePos) & 0x7FFF_FFFFu);
            }
        }
        if (longestLength == 0) return 0;
        if (longestValue >= _normalized.Length)
            throw new InvalidDataException($"precompiled_charsmap points at string offset {longestValue} past its {_normalized.Length}-byte table");
        var rest = _normalized.AsSpan(longestValue);
        int end = rest.IndexOf((byte)0);
        replacement = end < 0 ? rest : rest[..end];
        return longestLength;
    }

    private uint Unit(long pos)
    {
        if ((ulong)pos >= (ulong)_units.Length)
            throw new InvalidDataException($"precompiled_charsmap trie walks to unit {pos} outside its {_units.Length} units");
        return _units[pos];
    }

    // Darts-clone unit encoding: bit 8 = has leaf, bits 0-7 (and bit 31 for leaves) = label,
    // bits 10-31 = offset, scaled by 256 when bit 9 is set; a leaf unit holds the value in bits 0-30.
    private static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;
    private static uint Label(uint unit) => unit & (0x8000_0000u | 0xFFu);
    private static long Offset(uint unit) => (long)(unit >> 10) << (int)((unit & (1u << 9)) >> 6);
}
