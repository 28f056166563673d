namespace Sora.Native.Text;

/// <summary>
/// SentencePiece's normaliser (normalizer.cc): rewrites UTF-8 input through the precompiled charsmap
/// (longest rule first), drops leading, trailing and repeated spaces when remove_extra_whitespaces is set,
/// adds the dummy ▁ prefix and turns spaces into ▁ (U+2581). User-defined pieces pass through unchanged.
/// </summary>
internal sealed class SentencePieceNormalizer
{
    private static ReadOnlySpan<byte> SpaceSymbol => "\u2581"u8;
    private static ReadOnlySpan<byte> ReplacementChar => "\uFFFD"u8;

    private readonly NormalizerSpec _spec;
    private readonly bool _treatWhitespaceAsSuffix;
    private readonly PrecompiledCharsMap? _charsMap;
    private readonly ByteTrie? _userDefined;

    public SentencePieceNormalizer(NormalizerSpec spec, bool treatWhitespaceAsSuffix, ByteTrie? userDefined)
    {
        _spec = spec;
        _treatWhitespaceAsSuffix = treatWhitespaceAsSuffix;
        _charsMap = spec.PrecompiledCharsMap.Length > 0 ? PrecompiledCharsMap.Parse(spec.PrecompiledCharsMap) : null;
        _userDefined = userDefined;
    }

    public byte[] Normalize(ReadOnlySpan<byte> input)
    {
        var output = new List<byte>(input.Length * 3);
        if (input.IsEmpty) return [];

        if (_spec.RemoveExtraWhitespaces)
        {
            while (!input.IsEmpty)
            {
                int consumed = NormalizePrefix(input, out var piece);
                if (!piece.SequenceEqual(" "u8)) break;
                input = input[consumed..];
            }
        }
        if (input.IsEmpty) return [];

        if (!_treatWhitespaceAsSuffix && _spec.AddDummyPrefix) AddSpace(output);

        bool isPrevSpace = _spec.RemoveExtraWhitespaces;
        while (!input.IsEmpty)
        {
            int consumed = NormalizePrefix(input, out var piece);
            // A run of spaces collapses: drop the leading spaces of a piece that follows a space.
            while (isPrevSpace && !piece.IsEmpty && piece[0] == (byte)' ') piece = piece[1..];
            if (!piece.IsEmpty)
            {
                foreach (byte b in piece)
                {
                    if (_spec.EscapeWhitespaces && b == (byte)' ') output.AddRange(SpaceSymbol);
                    else output.Add(b);
                }
                isPrevSpace = piece[^1] == (byte)' ';
            }
            input = input[consumed..];
            if (!_spec.RemoveExtraWhitespaces) isPrevSpace = false;
        }

        if (_spec.RemoveExtraWhitespaces)
        {
            ReadOnlySpan<byte> space = _spec.EscapeWhitespaces ? SpaceSymbol : " "u8;
            while (EndsWith(output, space)) output.RemoveRange(output.Count - space.Length, space.Length);
        }

        if (_treatWhitespaceAsSuffix && _spec.AddDummyPrefix) AddSpace(output);
        return output.ToArray();
    }

    private void AddSpace(List<byte> output)
    {
        if (_spec.EscapeWhitespaces) output.AddRange(SpaceSymbol);
        else output.Add((byte)' ');
    }

    /// <summary>Normalises the first unit of <paramref name="input"/>; returns how many input bytes it consumed.</summary>
    private int NormalizePrefix(ReadOnlySpan<byte> input, out ReadOnlySpan<byte> normalized)
    {
        if (_userDefined is not null)
        {
            int length = _userDefined.LongestPrefix(input);
            if (length > 0)
            {
                normalized = input[..length];
                return length;
            }
        }
        if (_charsMap is not null)
        {
            int length = _charsMap.LongestPrefix(input, out normalized);
            if (length > 0) return length;
        }
        int charLength = Utf8.ValidCharLength(input);
        if (charLength == 0)
        {
            // Malformed UTF-8: sentencepiece emits U+FFFD and consumes one byte.
            normalized = ReplacementChar;
            return 1;
        }
        normalized = input[..charLength];
        return charLength;
    }

    private static bool EndsWith(List<byte> list, ReadOnlySpan<byte> suffix)
    {
        if (list.Count < suffix.Length) return false;
        for (int i = 0; i < suffix.Length; i++)
            if (list[list.Count - suffix.Length + i] != suffix[i]) return false;
        return true;
    }
}

/// <summary>UTF-8 helpers with sentencepiece's rules.</summary>
internal static class Utf8
{
    /// <summary>sentencepiece's OneCharLen: the length implied by the lead byte (continuation bytes count as 1).</summary>
    public static int OneCharLength(byte lead) => lead switch
    {
        < 0xC0 => 1,
        < 0xE0 => 2,
        < 0xF0 => 3,
        _ => 4,
    };

    /// <summary>
    /// Length of the well-formed UTF-8 character at the start of <paramref name="s"/>, or 0 if it is
    /// malformed (bad continuation, overlong form, surrogate or beyond U+10FFFF).
    /// </summary>
    public static int ValidCharLength(ReadOnlySpan<byte> s)
    {
        byte b0 = s[0];
        if (b0 < 0x80) return 1;
        int length = b0 switch
        {
            >= 0xC2 and <= 0xDF => 2,
            >= 0xE0 and <= 0xEF => 3,
            >= 0xF0 and <= 0xF4 => 4,
            _ => 0,
        };
        if (length == 0 || s.Length < length) return 0;
        int cp = b0 & (0xFF >> (length + 1));
        for (int i = 1; i < length; i++)
        {
            if ((s[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        bool overlong = (length == 3 && cp < 0x800) || (length == 4 && cp < 0x10000);
        bool invalid = cp is >= 0xD800 and <= 0xDFFF || cp > 0x10FFFF;
        return overlong || invalid ? 0 : length;
    }
}
