namespace Sora.Native.Video;

/// <summary>
/// A colour palette for GIF: median cut over a histogram of colours quantised to 5 bits per channel, each
/// palette entry the mean of the pixels in its box. Pixels map to the nearest entry, cached per 6-bit cell.
/// </summary>
internal sealed class GifPalette
{
    private const int HistBits = 5;
    private const int CacheBits = 6;
    private readonly short[] _cache = new short[1 << (3 * CacheBits)];

    private readonly int _used;

    private GifPalette(byte[] colors, int used)
    {
        Colors = colors;
        _used = used;
        Array.Fill(_cache, (short)-1);
    }

    /// <summary>256 entries × RGB (unused entries are black).</summary>
    public byte[] Colors { get; }

    public static GifPalette MedianCut(VideoFrames video, int size)
    {
        int bins = 1 << (3 * HistBits);
        var count = new long[bins];
        var sum = new long[bins * 3];
        var rgb = new byte[video.FrameValues];
        for (int f = 0; f < video.Frames; f++)
        {
            video.FrameBytes(f, rgb);
            for (int i = 0; i < rgb.Length; i += 3)
            {
                int bin = Bin(rgb[i], rgb[i + 1], rgb[i + 2]);
                count[bin]++;
                sum[3 * bin] += rgb[i];
                sum[3 * bin + 1] += rgb[i + 1];
                sum[3 * bin + 2] += rgb[i + 2];
            }
        }

        var boxes = new List<int[]> { Enumerable.Range(0, bins).Where(b => count[b] > 0).ToArray() };
        while (boxes.Count < size)
        {
            // Split the box whose pixels spread widest (pixel count × longest side), along its longest side, at the median pixel.
            int best = -1;
            long bestScore = 0;
            int bestAxis = 0;
            for (int i = 0; i < boxes.Count; i++)
            {
                if (boxes[i].Length < 2) continue;
                var (axis, range) = LongestAxis(boxes[i]);
                long pixels = boxes[i].Sum(b => count[b]);
                long score = pixels * range;
                if (score > bestScore) { bestScore = score; best = i; bestAxis = axis; }
            }
            if (best < 0) break;
            var box = boxes[best];
            int ax = bestAxis;
            Array.Sort(box, (a, b) => Channel(a, ax).CompareTo(Channel(b, ax)));
            long total = box.Sum(b => count[b]), acc = 0;
            int cut = 1;
            for (; cut < box.Length; cut++)
            {
                acc += count[box[cut - 1]];
                if (2 * acc >= total) break;
            }
            cut = Math.Clamp(cut, 1, box.Length - 1);
            boxes[best] = box[..cut];
            boxes.Add(box[cut..]);
        }

        var colors = new byte[256 * 3];
        for (int i = 0; i < boxes.Count; i++)
        {
            long n = 0, r = 0, g = 0, b = 0;
            foreach (int bin in boxes[i])
            {
                n += count[bin];
                r += sum[3 * bin];
                g += sum[3 * bin + 1];
                b += sum[3 * bin + 2];
            }
            colors[3 * i] = (byte)((r + n / 2) / n);
            colors[3 * i + 1] = (byte)((g + n / 2) / n);
            colors[3 * i + 2] = (byte)((b + n / 2) / n);
        }
        return new GifPalette(colors, boxes.Count);
    }

    /// <summary>Maps interleaved RGB pixels to palette indices.</summary>
    public void Map(ReadOnlySpan<byte> rgb, Span<byte> indices)
    {
        for (int p = 0; p < indices.Length; p++)
        {
            int r = rgb[3 * p], g = rgb[3 * p + 1], b = rgb[3 * p + 2];
            int key = (r >> (8 - CacheBits)) << (2 * CacheBits) | (g >> (8 - CacheBits)) << CacheBits | b >> (8 - CacheBits);
            int index = _cache[key];
            if (index < 0)
            {
                // The cell's centre stands for every colour in it.
                const int half = 1 << (7 - CacheBits);
                index = Nearest((r & ~(2 * half - 1)) + half, (g & ~(2 * half - 1)) + half, (b & ~(2 * half - 1)) + half);
                _cache[key] = (short)index;
            }
            indices[p] = (byte)index;
        }
    }

    private int Nearest(int r, int g, int b)
    {
        int best = 0, bestD = int.MaxValue;
        for (int i = 0; i < _used; i++)
        {
            int dr = Colors[3 * i] - r, dg = Colors[3 * i + 1] - g, db = Colors[3 * i + 2] - b;
            int d = dr * dr + dg * dg + db * db;
            if (d < bestD) { bestD = d; best = i; }
        }
        return best;
    }

    private static int Bin(int r, int g, int b)
        => (r >> (8 - HistBits)) << (2 * HistBits) | (g >> (8 - HistBits)) << HistBits | b >> (8 - HistBits);

    private static int Channel(int bin, int axis) => (bin >> ((2 - axis) * HistBits)) & ((1 << HistBits) - 1);

    private static (int Axis, int Range) LongestAxis(int[] box)
    {
        int bestAxis = 0, bestRange = -1;
        for (int axis = 0; axis < 3; axis++)
        {
            int lo = int.MaxValue, hi = int.MinValue;
            foreach (int bin in box)
            {
                int c = Channel(bin, axis);
                lo = Math.Min(lo, c);
                hi = Math.Max(hi, c);
            }
            if (hi - lo > bestRange) { bestRange = hi - lo; bestAxis = axis; }
        }
        return (bestAxis, bestRange);
    }
}
