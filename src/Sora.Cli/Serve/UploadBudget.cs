namespace Sora.Cli.Serve;

/// <summary>
/// What an uploaded clip decodes to, read from its container before it is decoded, so a small file that expands to
/// gigabytes (a GIF of many large, identical frames compresses about a thousandfold) is refused unopened.
/// </summary>
public static class UploadBudget
{
    /// <summary>
    /// Frames × width × height of a GIF from its logical screen descriptor and image descriptors (GIF89a §18, §20);
    /// null when the file ends or breaks before its trailer (then the decoder reports the damage).
    /// </summary>
    public static long? GifPixels(ReadOnlySpan<byte> gif)
    {
        if (gif.Length < 13 || !gif.StartsWith("GIF8"u8)) return null;
        long canvas = (long)(gif[6] | gif[7] << 8) * (gif[8] | gif[9] << 8);
        int pos = 13 + ColorTableBytes(gif[10]);
        long frames = 0;
        while (pos < gif.Length)
        {
            switch (gif[pos])
            {
                case 0x21: // extension: label, then data sub-blocks
                    pos = SkipSubBlocks(gif, pos + 2);
                    break;
                case 0x2C: // image descriptor (10 bytes), local colour table, LZW code size, data sub-blocks
                    if (pos + 10 > gif.Length) return null;
                    frames++;
                    pos = SkipSubBlocks(gif, pos + 10 + ColorTableBytes(gif[pos + 9]) + 1);
                    break;
                case 0x3B:
                    return frames * canvas;
                default:
                    return null;
            }
        }
        return null;
    }

    private static int ColorTableBytes(byte flags) => (flags & 0x80) == 0 ? 0 : 3 << ((flags & 7) + 1);

    private static int SkipSubBlocks(ReadOnlySpan<byte> gif, int pos)
    {
        while (pos < gif.Length)
        {
            int size = gif[pos++];
            if (size == 0) return pos;
            pos += size;
        }
        return int.MaxValue;
    }
}
