using System.Buffers.Binary;

namespace Sora.Native.Video;

/// <summary>
/// Writes an animated GIF89a that loops forever: one global 256-colour palette chosen by median cut over the
/// whole video (so colours do not flicker between frames), nearest-colour mapping, LZW-compressed frames.
/// Frame delays are in hundredths of a second; they are rounded cumulatively so the average rate is exactly
/// <c>fps</c> (16 fps → 6, 6, 7, 6, ... centiseconds).
/// </summary>
public static class GifWriter
{
    public static void Write(VideoFrames video, string path, int fps = 16, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(fps, 1);
        if (video.Width > ushort.MaxValue || video.Height > ushort.MaxValue)
            throw new ArgumentException($"GIF frames are at most 65535 pixels wide and high, got {video.Width}x{video.Height}");
        var palette = GifPalette.MedianCut(video, 256);
        AtomicOutput.WriteFile(path, stream =>
        {
            WriteHeader(stream, video.Width, video.Height, palette.Colors);
            var rgb = new byte[video.FrameValues];
            var indices = new byte[video.Width * video.Height];
            for (int f = 0; f < video.Frames; f++)
            {
                ct.ThrowIfCancellationRequested();
                video.FrameBytes(f, rgb);
                palette.Map(rgb, indices);
                WriteFrame(stream, video.Width, video.Height, FrameDelay(f, fps), indices);
            }
            stream.WriteByte(0x3B); // trailer
        });
    }

    /// <summary>Delay of frame <paramref name="frame"/> in centiseconds, rounded so the running total stays on time.</summary>
    public static int FrameDelay(int frame, int fps)
        => (int)(Math.Round((frame + 1) * 100.0 / fps) - Math.Round(frame * 100.0 / fps));

    private static void WriteHeader(Stream s, int width, int height, byte[] colors)
    {
        s.Write("GIF89a"u8);
        Span<byte> lsd = stackalloc byte[7];
        BinaryPrimitives.WriteUInt16LittleEndian(lsd, (ushort)width);
        BinaryPrimitives.WriteUInt16LittleEndian(lsd[2..], (ushort)height);
        lsd[4] = 0b1111_0111; // global colour table, 8 bits colour resolution, 2^(7+1) = 256 entries
        lsd[5] = 0;           // background colour index
        lsd[6] = 0;           // no aspect ratio
        s.Write(lsd);
        s.Write(colors);
        // NETSCAPE2.0 application extension: loop count 0 = forever.
        s.Write([0x21, 0xFF, 0x0B]);
        s.Write("NETSCAPE2.0"u8);
        s.Write([0x03, 0x01, 0x00, 0x00, 0x00]);
    }

    private static void WriteFrame(Stream s, int width, int height, int delayCs, byte[] indices)
    {
        // Graphic control extension: no transparency, disposal "do not dispose" (every frame is full size).
        Span<byte> gce = [0x21, 0xF9, 0x04, 0b0000_0100, 0, 0, 0, 0x00];
        BinaryPrimitives.WriteUInt16LittleEndian(gce[4..], (ushort)delayCs);
        s.Write(gce);
        Span<byte> desc = stackalloc byte[10];
        desc[0] = 0x2C;
        BinaryPrimitives.WriteUInt16LittleEndian(desc[1..], 0);
        BinaryPrimitives.WriteUInt16LittleEndian(desc[3..], 0);
        BinaryPrimitives.WriteUInt16LittleEndian(desc[5..], (ushort)width);
        BinaryPrimitives.WriteUInt16LittleEndian(desc[7..], (ushort)height);
        desc[9] = 0; // no local colour table, not interlaced
        s.Write(desc);
        GifLzw.Encode(s, indices, minCodeSize: 8);
    }
}

/// <summary>GIF's variable-width LZW (codes of 9 to 12 bits, LSB first, in sub-blocks of up to 255 bytes).</summary>
internal static class GifLzw
{
    private const int MaxCode = 4095;

    public static void Encode(Stream s, ReadOnlySpan<byte> indices, int minCodeSize)
    {
        s.WriteByte((byte)minCodeSize);
        var bits = new BitSink(s);
        int clear = 1 << minCodeSize, end = clear + 1;
        int codeSize = minCodeSize + 1, next = end + 1;
        // (prefix code << 8 | next byte) → code of that string.
        var table = new Dictionary<int, int>(MaxCode + 1);
        bits.Write(clear, codeSize);
        if (indices.IsEmpty)
        {
            bits.Write(end, codeSize);
            bits.Finish();
            return;
        }
        int prefix = indices[0];
        for (int i = 1; i < indices.Length; i++)
        {
            byte k = indices[i];
            int key = prefix << 8 | k;
            if (table.TryGetValue(key, out int code))
            {
                prefix = code;
                continue;
            }
            bits.Write(prefix, codeSize);
            if (next <= MaxCode)
            {
                table[key] = next++;
                // The decoder adds its entries one code later; it widens once its table passes 2^codeSize entries.
                if (next > 1 << codeSize && codeSize < 12) codeSize++;
            }
            else
            {
                bits.Write(clear, codeSize);
                table.Clear();
                codeSize = minCodeSize + 1;
                next = end + 1;
            }
            prefix = k;
        }
        bits.Write(prefix, codeSize);
        bits.Write(end, codeSize);
        bits.Finish();
    }

    private sealed class BitSink(Stream s)
    {
        private readonly byte[] _block = new byte[256];
        private int _count;
        private uint _acc;
        private int _accBits;

        public void Write(int code, int size)
        {
            _acc |= (uint)code << _accBits;
            _accBits += size;
            while (_accBits >= 8)
            {
                Put((byte)_acc);
                _acc >>= 8;
                _accBits -= 8;
            }
        }

        public void Finish()
        {
            if (_accBits > 0) Put((byte)_acc);
            _acc = 0;
            _accBits = 0;
            Flush();
            s.WriteByte(0); // block terminator
        }

        private void Put(byte b)
        {
            _block[1 + _count++] = b;
            if (_count == 255) Flush();
        }

        private void Flush()
        {
            if (_count == 0) return;
            _block[0] = (byte)_count;
            s.Write(_block, 0, 1 + _count);
            _count = 0;
        }
    }
}
