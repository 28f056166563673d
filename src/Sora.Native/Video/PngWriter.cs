using System.Buffers.Binary;
using System.IO.Compression;

namespace Sora.Native.Video;

/// <summary>
/// Writes frames as 8-bit RGB PNG files (no interlace), one per frame, named frame_00000.png, frame_00001.png, ...
/// into a folder that appears only once every frame is written.
/// </summary>
public static class PngWriter
{
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public static string FrameFileName(int frame) => $"frame_{frame:D5}.png";

    /// <summary>Writes every frame into <paramref name="folder"/> (which must not exist or be empty).</summary>
    public static void WriteFolder(VideoFrames video, string folder, CancellationToken ct = default)
    {
        AtomicOutput.WriteFolder(folder, temp =>
        {
            var rgb = new byte[video.FrameValues];
            for (int f = 0; f < video.Frames; f++)
            {
                ct.ThrowIfCancellationRequested();
                video.FrameBytes(f, rgb);
                using var file = new FileStream(Path.Combine(temp, FrameFileName(f)), FileMode.CreateNew, FileAccess.Write);
                WriteImage(file, rgb, video.Width, video.Height);
            }
        });
    }

    /// <summary>Encodes one interleaved RGB image as a PNG stream.</summary>
    public static void WriteImage(Stream output, ReadOnlySpan<byte> rgb, int width, int height)
    {
        int stride = width * 3;
        if (rgb.Length != stride * height) throw new ArgumentException($"{rgb.Length} bytes do not make a {width}x{height} RGB image", nameof(rgb));
        output.Write(Signature);

        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], height);
        ihdr[8] = 8;  // bit depth
        ihdr[9] = 2;  // colour type: truecolour RGB
        ihdr[10] = 0; // compression: deflate
        ihdr[11] = 0; // filter method 0
        ihdr[12] = 0; // no interlace
        WriteChunk(output, "IHDR", ihdr);

        var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            var row = new byte[1 + stride];
            var scratch = new byte[stride];
            for (int y = 0; y < height; y++)
            {
                var cur = rgb.Slice(y * stride, stride);
                var prev = y == 0 ? ReadOnlySpan<byte>.Empty : rgb.Slice((y - 1) * stride, stride);
                FilterRow(cur, prev, row, scratch);
                z.Write(row);
            }
        }
        WriteChunk(output, "IDAT", compressed.GetBuffer().AsSpan(0, (int)compressed.Length));
        WriteChunk(output, "IEND", ReadOnlySpan<byte>.Empty);
    }

    /// <summary>
    /// Picks the PNG filter with the smallest sum of absolute (signed) residuals for the row, the usual
    /// heuristic that makes smooth generated images compress well. Writes the filter type then the filtered bytes.
    /// </summary>
    private static void FilterRow(ReadOnlySpan<byte> cur, ReadOnlySpan<byte> prev, Span<byte> dest, Span<byte> scratch)
    {
        long best = long.MaxValue;
        for (int type = 0; type <= 4; type++)
        {
            long cost = 0;
            for (int i = 0; i < cur.Length; i++)
            {
                int a = i >= 3 ? cur[i - 3] : 0;
                int b = prev.IsEmpty ? 0 : prev[i];
                int c = i >= 3 && !prev.IsEmpty ? prev[i - 3] : 0;
                int predictor = type switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) >> 1,
                    _ => Paeth(a, b, c),
                };
                byte r = (byte)(cur[i] - predictor);
                scratch[i] = r;
                cost += r < 128 ? r : 256 - r;
            }
            if (cost < best)
            {
                best = cost;
                dest[0] = (byte)type;
                scratch.CopyTo(dest[1..]);
            }
        }
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        if (pa <= pb && pa <= pc) return a;
        return pb <= pc ? b : c;
    }

    private static void WriteChunk(Stream output, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(head, data.Length);
        for (int i = 0; i < 4; i++) head[4 + i] = (byte)type[i];
        output.Write(head);
        output.Write(data);
        uint crc = Crc32.Append(Crc32.Append(0, head[4..]), data);
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(tail, crc);
        output.Write(tail);
    }
}
