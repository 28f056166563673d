using System.Globalization;
using System.Text;

namespace Sora.Native.Video;

/// <summary>
/// Writes YUV4MPEG2 (.y4m): 4:2:0 with JPEG/MPEG-1 chroma siting (C420jpeg: each chroma sample is the mean of
/// a 2×2 block), BT.601 limited-range ("TV") levels, which is what players and ffmpeg assume for y4m.
/// </summary>
public static class Y4mWriter
{
    public static void Write(VideoFrames video, string path, int fps = 16, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(fps, 1);
        AtomicOutput.WriteFile(path, stream =>
        {
            string header = string.Create(CultureInfo.InvariantCulture,
                $"YUV4MPEG2 W{video.Width} H{video.Height} F{fps}:1 Ip A1:1 C420jpeg\n");
            stream.Write(Encoding.ASCII.GetBytes(header));
            var frameTag = "FRAME\n"u8.ToArray();
            var (y, u, v) = Planes(video.Width, video.Height);
            for (int f = 0; f < video.Frames; f++)
            {
                ct.ThrowIfCancellationRequested();
                ConvertFrame(video, f, y, u, v);
                stream.Write(frameTag);
                stream.Write(y);
                stream.Write(u);
                stream.Write(v);
            }
        });
    }

    private static (byte[] Y, byte[] U, byte[] V) Planes(int width, int height)
    {
        int cw = (width + 1) / 2, ch = (height + 1) / 2;
        return (new byte[width * height], new byte[cw * ch], new byte[cw * ch]);
    }

    /// <summary>BT.601 luma and chroma from RGB in [0, 1], limited range: Y in [16, 235], Cb/Cr in [16, 240].</summary>
    public static float Luma(float r, float g, float b) => 16f + 65.481f * r + 128.553f * g + 24.966f * b;
    public static float Cb(float r, float g, float b) => 128f - 37.797f * r - 74.203f * g + 112.0f * b;
    public static float Cr(float r, float g, float b) => 128f + 112.0f * r - 93.786f * g - 18.214f * b;

    private static void ConvertFrame(VideoFrames video, int frame, byte[] yPlane, byte[] uPlane, byte[] vPlane)
    {
        int w = video.Width, h = video.Height, cw = (w + 1) / 2, ch = (h + 1) / 2;
        var rgb = video.Rgb.AsSpan(frame * video.FrameValues, video.FrameValues);
        for (int i = 0; i < w * h; i++)
            yPlane[i] = Level(Luma(Clamp(rgb[3 * i]), Clamp(rgb[3 * i + 1]), Clamp(rgb[3 * i + 2])));
        for (int cy = 0; cy < ch; cy++)
        {
            for (int cx = 0; cx < cw; cx++)
            {
                // Mean RGB of the 2×2 block (fewer pixels at an odd right/bottom edge); the conversion is linear.
                float r = 0, g = 0, b = 0;
                int n = 0;
                for (int dy = 0; dy < 2; dy++)
                {
                    int y = 2 * cy + dy;
                    if (y >= h) continue;
                    for (int dx = 0; dx < 2; dx++)
                    {
                        int x = 2 * cx + dx;
                        if (x >= w) continue;
                        int p = 3 * (y * w + x);
                        r += Clamp(rgb[p]); g += Clamp(rgb[p + 1]); b += Clamp(rgb[p + 2]);
                        n++;
                    }
                }
                r /= n; g /= n; b /= n;
                uPlane[cy * cw + cx] = Level(Cb(r, g, b));
                vPlane[cy * cw + cx] = Level(Cr(r, g, b));
            }
        }
    }

    private static float Clamp(float v) => v > 0f ? (v < 1f ? v : 1f) : 0f;

    private static byte Level(float v) => (byte)Math.Clamp((int)MathF.Round(v), 0, 255);
}
