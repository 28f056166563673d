using Sora.Runtime;

namespace Sora.Native.Video;

/// <summary>
/// Decoded video frames: <see cref="Rgb"/> is [Frames, Height, Width, 3] in row-major order, values in [0, 1]
/// (values outside are clamped when written).
/// </summary>
public sealed record VideoFrames
{
    public VideoFrames(int Frames, int Height, int Width, float[] Rgb)
    {
        ArgumentNullException.ThrowIfNull(Rgb);
        if (Frames < 1) throw new ArgumentOutOfRangeException(nameof(Frames), Frames, "a video needs at least one frame");
        if (Height < 1) throw new ArgumentOutOfRangeException(nameof(Height), Height, "height must be positive");
        if (Width < 1) throw new ArgumentOutOfRangeException(nameof(Width), Width, "width must be positive");
        long expected = (long)Frames * Height * Width * 3;
        if (Rgb.LongLength != expected)
            throw new ArgumentException($"Rgb holds {Rgb.LongLength} values but [{Frames}, {Height}, {Width}, 3] needs {expected}", nameof(Rgb));
        this.Frames = Frames;
        this.Height = Height;
        this.Width = Width;
        this.Rgb = Rgb;
    }

    public int Frames { get; }
    public int Height { get; }
    public int Width { get; }
    public float[] Rgb { get; }

    public int FrameValues => Height * Width * 3;

    /// <summary>One frame as interleaved 8-bit RGB (rounded, clamped to [0, 255]).</summary>
    public void FrameBytes(int frame, Span<byte> rgb24)
    {
        if ((uint)frame >= (uint)Frames) throw new ArgumentOutOfRangeException(nameof(frame), frame, $"the video has {Frames} frames");
        if (rgb24.Length != FrameValues) throw new ArgumentException($"buffer holds {rgb24.Length} bytes, a frame needs {FrameValues}", nameof(rgb24));
        var src = Rgb.AsSpan(frame * FrameValues, FrameValues);
        for (int i = 0; i < src.Length; i++) rgb24[i] = ToByte(src[i]);
    }

    public byte[] FrameBytes(int frame)
    {
        var b = new byte[FrameValues];
        FrameBytes(frame, b);
        return b;
    }

    /// <summary>Frames <paramref name="first"/> .. <paramref name="first"/> + <paramref name="count"/> − 1 as a new video (a copy).</summary>
    public VideoFrames Slice(int first, int count)
    {
        if (first < 0 || count < 1 || first > Frames - count)
            throw new ArgumentOutOfRangeException(nameof(count), $"frames {first}..{first + count - 1} are not within the video's {Frames}");
        return new VideoFrames(count, Height, Width, Rgb.AsSpan(first * FrameValues, count * FrameValues).ToArray());
    }

    /// <summary>The frames of this video, then those of <paramref name="next"/> (same size), as a new video.</summary>
    public VideoFrames Concat(VideoFrames next)
    {
        ArgumentNullException.ThrowIfNull(next);
        if (next.Height != Height || next.Width != Width)
            throw new ArgumentException($"videos of {Width}x{Height} and {next.Width}x{next.Height} cannot be joined", nameof(next));
        return new VideoFrames(Frames + next.Frames, Height, Width, [.. Rgb, .. next.Rgb]);
    }

    /// <summary>
    /// The frames as the VAE encoder takes them: a host F32 tensor [3, F, H, W] (planar: channel, frame, row,
    /// column) of v·2 − 1, so [0, 1] maps to [−1, 1] exactly as diffusers' VideoProcessor normalises.
    /// </summary>
    public Tensor ToVaeInput()
    {
        long plane = (long)Frames * Height * Width;
        var planar = new float[3 * plane];
        for (long p = 0; p < plane; p++)
        {
            planar[p] = Rgb[3 * p] * 2f - 1f;
            planar[plane + p] = Rgb[3 * p + 1] * 2f - 1f;
            planar[2 * plane + p] = Rgb[3 * p + 2] * 2f - 1f;
        }
        return Tensor.FromArray(planar, [3, Frames, Height, Width]);
    }

    /// <summary>[0, 1] → [0, 255], rounded to nearest (in double, so 0.9f · 255 = 229.49… stays 229); NaN becomes 0.</summary>
    public static byte ToByte(float v)
    {
        double s = v * 255.0 + 0.5;
        if (!(s > 0.0)) return 0;
        return s >= 255.0 ? (byte)255 : (byte)s;
    }
}
