using System.Globalization;
using System.Text;

namespace Sora.Native.Video;

/// <summary>
/// Reads YUV4MPEG2 (.y4m), 8-bit: 4:2:0 (C420jpeg, and C420mpeg2, C420paldv, C420 read with the same siting, at
/// most a quarter chroma sample off), 4:4:4 (C444) and mono (Cmono), with BT.601 limited-range levels, the inverse
/// of <see cref="Y4mWriter"/>: with y = (Y − 16)/219, cb = (Cb − 128)/224, cr = (Cr − 128)/224,
/// R = y + 2(1−Kr)·cr, G = y − 2(1−Kb)Kb/Kg·cb − 2(1−Kr)Kr/Kg·cr, B = y + 2(1−Kb)·cb for Kr = 0.299, Kb = 0.114,
/// Kg = 1 − Kr − Kb (1.402, 0.344136, 0.714136, 1.772), clamped to [0, 1]; 4:2:0 chroma is upsampled bilinearly.
/// The file length must match the header: every frame complete, nothing after the last.
/// </summary>
public static class Y4mReader
{
    private const int MaxLine = 4096;
    private const double Kr = 0.299, Kb = 0.114, Kg = 1 - Kr - Kb;

    private enum Chroma { C420, C444, Mono }

    public static VideoFrames Read(string path)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            return Read(path, file);
        }
        catch (VideoInputException) { throw; }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new VideoInputException(path, "no such file", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VideoInputException(path, $"cannot read the file ({e.Message})", e);
        }
    }

    private static VideoFrames Read(string path, FileStream file)
    {
        var header = ReadLine(file) ?? throw new VideoInputException(path, $"not a YUV4MPEG2 file (no header line within {MaxLine} bytes)");
        var tokens = header.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (tokens.Length == 0 || tokens[0] != "YUV4MPEG2") throw new VideoInputException(path, "not a YUV4MPEG2 file (no 'YUV4MPEG2' signature)");
        long width = 0, height = 0;
        var chroma = Chroma.C420;
        foreach (var t in tokens.Skip(1))
        {
            switch (t[0])
            {
                case 'W': width = Dimension(path, t); break;
                case 'H': height = Dimension(path, t); break;
                case 'C': chroma = ParseChroma(path, t[1..]); break;
                case 'I' when t != "Ip" && t != "I?":
                    throw new VideoInputException(path, $"interlaced y4m ({t}) is not read; give progressive frames");
            }
        }
        if (width == 0 || height == 0) throw new VideoInputException(path, "the header gives no W (width) or H (height)");
        VideoInput.CheckClipSize(path, 1, height, width);

        long cw = (width + 1) / 2, ch = (height + 1) / 2;
        long planeBytes = chroma switch
        {
            Chroma.C420 => width * height + 2 * cw * ch,
            Chroma.C444 => 3 * width * height,
            _ => width * height,
        };

        // First pass: walk the frame headers to count the frames and check the length before allocating.
        long firstFrame = file.Position;
        long frames = 0;
        while (file.Position < file.Length)
        {
            SkipFrameHeader(path, file, frames);
            if (file.Length - file.Position < planeBytes)
                throw new VideoInputException(path, $"frame {frames} is truncated: {planeBytes} bytes of {width}x{height} {chroma} expected, {file.Length - file.Position} left");
            file.Position += planeBytes;
            frames++;
            VideoInput.CheckClipSize(path, frames, height, width);
        }
        if (frames == 0) throw new VideoInputException(path, "the file holds no frames");

        int w = (int)width, h = (int)height;
        var rgb = new float[frames * h * w * 3];
        var planes = new byte[planeBytes];
        file.Position = firstFrame;
        for (int f = 0; f < frames; f++)
        {
            SkipFrameHeader(path, file, f);
            file.ReadExactly(planes);
            ToRgb(planes, chroma, w, h, rgb.AsSpan(f * h * w * 3, h * w * 3)); // the whole clip is under Array.MaxLength values
        }
        return new VideoFrames((int)frames, h, w, rgb);
    }

    private static long Dimension(string path, string token)
        => long.TryParse(token.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out long v) && v > 0 && v <= VideoInput.MaxSide
            ? v
            : throw new VideoInputException(path, $"bad header size '{token}' (1..{VideoInput.MaxSide})");

    private static Chroma ParseChroma(string path, string c) => c switch
    {
        "420jpeg" or "420mpeg2" or "420paldv" or "420" => Chroma.C420,
        "444" => Chroma.C444,
        "mono" => Chroma.Mono,
        _ => throw new VideoInputException(path, $"y4m colour space C{c} is not read; give 8-bit 4:2:0 (C420jpeg), 4:4:4 (C444) or mono"),
    };

    private static void SkipFrameHeader(string path, FileStream file, long frame)
    {
        var line = ReadLine(file);
        if (line is null || (line != "FRAME" && !line.StartsWith("FRAME ", StringComparison.Ordinal)))
            throw new VideoInputException(path, $"frame {frame} does not start with a 'FRAME' line (the header's size does not match the data)");
    }

    /// <summary>ASCII up to a '\n'; null at the end of the file or past <see cref="MaxLine"/> bytes, so a file without newlines is not read whole.</summary>
    private static string? ReadLine(FileStream file)
    {
        var sb = new StringBuilder();
        while (sb.Length <= MaxLine)
        {
            int b = file.ReadByte();
            if (b < 0) return null;
            if (b == '\n') return sb.ToString();
            sb.Append((char)b);
        }
        return null;
    }

    private static void ToRgb(ReadOnlySpan<byte> planes, Chroma chroma, int w, int h, Span<float> rgb)
    {
        int cw = (w + 1) / 2, ch = (h + 1) / 2;
        var luma = planes[..(w * h)];
        int chromaBytes = chroma == Chroma.C444 ? w * h : cw * ch;
        var cbPlane = chroma == Chroma.Mono ? default : planes.Slice(w * h, chromaBytes);
        var crPlane = chroma == Chroma.Mono ? default : planes.Slice(w * h + chromaBytes, chromaBytes);
        for (int y = 0; y < h; y++)
        {
            for (int x = 0; x < w; x++)
            {
                int p = y * w + x;
                double cb = 0, cr = 0;
                if (chroma == Chroma.C444)
                {
                    cb = (cbPlane[p] - 128) / 224.0;
                    cr = (crPlane[p] - 128) / 224.0;
                }
                else if (chroma == Chroma.C420)
                {
                    cb = (Upsample(cbPlane, cw, ch, x, y) - 128) / 224.0;
                    cr = (Upsample(crPlane, cw, ch, x, y) - 128) / 224.0;
                }
                double yy = (luma[p] - 16) / 219.0;
                rgb[3 * p] = Unit(yy + 2 * (1 - Kr) * cr);
                rgb[3 * p + 1] = Unit(yy - 2 * (1 - Kb) * Kb / Kg * cb - 2 * (1 - Kr) * Kr / Kg * cr);
                rgb[3 * p + 2] = Unit(yy + 2 * (1 - Kb) * cb);
            }
        }
    }

    /// <summary>
    /// The chroma plane at luma pixel (x, y), bilinear: chroma sample (i, j) sits at the centre of its 2×2 block,
    /// luma coordinate (2i + ½, 2j + ½), so pixel 2k takes ¾ of sample k and ¼ of k − 1, pixel 2k + 1 ¾ of k and
    /// ¼ of k + 1 (edges repeat the outermost sample).
    /// </summary>
    private static double Upsample(ReadOnlySpan<byte> plane, int cw, int ch, int x, int y)
    {
        int x0 = x / 2, x1 = Math.Clamp(x % 2 == 0 ? x0 - 1 : x0 + 1, 0, cw - 1);
        int y0 = y / 2, y1 = Math.Clamp(y % 2 == 0 ? y0 - 1 : y0 + 1, 0, ch - 1);
        return 0.5625 * plane[y0 * cw + x0] + 0.1875 * (plane[y0 * cw + x1] + plane[y1 * cw + x0]) + 0.0625 * plane[y1 * cw + x1];
    }

    private static float Unit(double v) => (float)Math.Clamp(v, 0.0, 1.0);
}
